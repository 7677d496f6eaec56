"""K-means bucketing: 1-D clustering of the history.

Values are clustered into at most ``n_buckets`` groups by weighted 1-D Lloyd
iterations (the k-means objective of scikit-learn's ``KMeans`` with sample
weights, specialised to one dimension: clusters of sorted values are
contiguous runs, so an iteration is a ``searchsorted`` of the midpoints
between centres and prefix-sum differences; scikit-learn's general estimator
costs about a millisecond per fit, too slow to refit after every task).  Initial centres are the significance-weighted quantiles
(deterministic); ``seed`` breaks nothing today but is kept so a randomised
initialisation stays reproducible.  A bucket's upper bound is its cluster's
maximum, its probability the cluster's significance share.
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

import numpy as np

from .points import Bucket, as_points, bin_points, check_n_buckets


def kmeans(values: Iterable[float], significance: Iterable[float] | None = None, *,
           n_buckets: int = 4, seed: int = 0) -> list[Bucket]:
    """K-means buckets of ``values`` (>= 0) weighted by ``significance``
    (default: arrival index 1..n), at most ``n_buckets`` of them."""
    n_buckets = check_n_buckets(n_buckets)
    vals, sig = as_points(values, significance)
    return kmeans_binned(*bin_points(vals, sig), n_buckets=n_buckets, seed=seed)


def kmeans_binned(values: np.ndarray, sig: np.ndarray, *, n_buckets: int = 4, seed: int = 0,
                  max_iter: int = 100) -> list[Bucket]:
    """:func:`kmeans` on binned points (ascending distinct values, summed significance).

    Clusters of sorted 1-D values are contiguous, so each Lloyd iteration only
    locates the midpoints between centres (a bisection each) and takes cluster
    sums as differences of prefix sums: O(clusters · log bins) per iteration.
    The iterations run on plain Python floats (a handful of centres: numpy's
    per-call overhead would dominate), with the same floating-point operations
    as an array formulation, so the buckets do not depend on which is used.
    """
    k = min(n_buckets, values.size)
    csig_arr = np.concatenate(([0.0], np.cumsum(sig)))
    cwsum_arr = np.concatenate(([0.0], np.cumsum(sig * values)))
    total = float(csig_arr[-1])
    targets = (np.arange(k) + 0.5) / k * total
    centres = np.unique(values[np.minimum(np.searchsorted(csig_arr[1:], targets), values.size - 1)]).tolist()
    vals = values.tolist()
    csig = csig_arr.tolist()
    cwsum = cwsum_arr.tolist()
    size = len(vals)

    def bounds(cs: list[float]) -> list[int]:
        # cluster j holds the values in (mid_{j-1}, mid_j]
        return [0] + [bisect_right(vals, (b + a) / 2) for a, b in zip(cs, cs[1:])] + [size]

    for _ in range(max_iter):
        pos = bounds(centres)
        new = []
        for a, b in zip(pos, pos[1:]):
            w = csig[b] - csig[a]
            if w > 0:
                new.append((cwsum[b] - cwsum[a]) / w)
        converged = len(new) == len(centres) and \
            max(abs(x - c) for x, c in zip(new, centres)) <= 1e-9 * max(1.0, new[-1])
        centres = new
        if converged:
            break
    pos = bounds(centres)
    pos = [p for i, p in enumerate(pos) if i == 0 or p != pos[i - 1]]  # drop empty clusters
    return [Bucket(vals[e - 1], (csig[e] - csig[s]) / total) for s, e in zip(pos, pos[1:])]
