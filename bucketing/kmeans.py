"""K-means bucketing: 1-D clustering of the history.

Values are clustered into at most ``n_buckets`` groups by weighted 1-D Lloyd
iterations (the k-means objective of scikit-learn's ``KMeans`` with sample
weights, specialised to one dimension: clusters of sorted values are
contiguous runs, so an iteration is a ``searchsorted`` on the midpoints
between centres).  Initial centres are the significance-weighted quantiles
(deterministic); ``seed`` breaks nothing today but is kept so a randomised
initialisation stays reproducible.  A bucket's upper bound is its cluster's
maximum, its probability the cluster's significance share.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .points import Bucket, as_points, bin_points


def kmeans(values: Iterable[float], significance: Iterable[float] | None = None, *,
           n_buckets: int = 4, seed: int = 0) -> list[Bucket]:
    """K-means buckets of ``values`` (>= 0) weighted by ``significance``
    (default: arrival index 1..n), at most ``n_buckets`` of them."""
    if not isinstance(n_buckets, (int, np.integer)) or n_buckets < 1:
        raise ValueError(f"n_buckets must be an integer >= 1, got {n_buckets!r}")
    vals, sig = as_points(values, significance)
    return kmeans_binned(*bin_points(vals, sig), n_buckets=n_buckets, seed=seed)


def kmeans_binned(values: np.ndarray, sig: np.ndarray, *, n_buckets: int = 4, seed: int = 0,
                  max_iter: int = 100) -> list[Bucket]:
    """:func:`kmeans` on binned points (ascending distinct values, summed significance)."""
    k = min(n_buckets, values.size)
    cum = np.cumsum(sig)
    total = cum[-1]
    targets = (np.arange(k) + 0.5) / k * total
    centres = np.unique(values[np.minimum(np.searchsorted(cum, targets), values.size - 1)])
    wv = sig * values
    labels = np.zeros(values.size, dtype=int)
    for _ in range(max_iter):
        labels = np.searchsorted((centres[1:] + centres[:-1]) / 2, values, side="left")
        w = np.bincount(labels, weights=sig, minlength=centres.size)
        keep = w > 0
        new = np.bincount(labels, weights=wv, minlength=centres.size)[keep] / w[keep]
        if new.size == centres.size and np.allclose(new, centres, rtol=0, atol=1e-12):
            break
        centres = new
    labels = np.searchsorted((centres[1:] + centres[:-1]) / 2, values, side="left")
    last = np.flatnonzero(np.diff(labels, append=labels[-1] + 1))
    csig = np.concatenate(([0.0], cum))
    probs = np.diff(csig[last + 1], prepend=0.0) / total
    return [Bucket(float(values[i]), float(p)) for i, p in zip(last, probs)]
