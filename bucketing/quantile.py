"""Quantile bucketing: bucket bounds at equal-significance quantiles.

Bucket *j* of ``n_buckets`` ends at the smallest value whose cumulative
significance share reaches ``j / n_buckets``; bounds that coincide are merged,
so fewer buckets come back when many tasks share a value.  Probabilities are
the significance shares of the resulting buckets.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .points import Bucket, as_points, bin_points, check_n_buckets


def quantile(values: Iterable[float], significance: Iterable[float] | None = None, *,
             n_buckets: int = 4) -> list[Bucket]:
    """Quantile buckets of ``values`` (>= 0) weighted by ``significance``
    (default: arrival index 1..n), at most ``n_buckets`` of them."""
    n_buckets = check_n_buckets(n_buckets)
    vals, sig = as_points(values, significance)
    return quantile_binned(*bin_points(vals, sig), n_buckets=n_buckets)


def quantile_binned(values: np.ndarray, sig: np.ndarray, *, n_buckets: int = 4) -> list[Bucket]:
    """:func:`quantile` on binned points (ascending distinct values, summed significance)."""
    cum = np.cumsum(sig)
    total = cum[-1]
    # a tiny relative tolerance so that shares like 2/4 computed in floating point still hit their bin
    targets = np.arange(1, n_buckets + 1) / n_buckets * total * (1 - 1e-12)
    idx = np.unique(np.minimum(np.searchsorted(cum, targets, side="left"), values.size - 1))
    idx[-1] = values.size - 1
    probs = np.diff(np.concatenate(([0.0], cum[idx]))) / total
    return [Bucket(float(values[i]), float(p)) for i, p in zip(idx, probs)]
