"""Quantized bucketing (cctools' ``bucketing_quantized.c``, as TaskVine uses it).

Every task counts once, whatever its age: the history sorted by value is cut
into ``n_buckets`` runs of (nearly) equal task counts.  Bucket *j* (0-based)
closes at the first point whose 1-based rank reaches
``floor((j + 1) / n_buckets * n)`` and is at least one point past the previous
bucket, so a history shorter than ``n_buckets`` gives one bucket per task.
A bucket's upper bound is the value of its last point and its probability its
share of the task count.  Buckets with equal bounds (several cuts inside one
run of equal values) are merged, which leaves every prediction unchanged.

``n_buckets=1`` is TaskVine's default: one bucket at the largest value seen,
i.e. max-seen after the sampling phase.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .points import Bucket, as_points, bin_points, check_n_buckets


def quantized(values: Iterable[float], *, n_buckets: int = 10) -> list[Bucket]:
    """Quantized buckets of ``values`` (>= 0, each one task), at most ``n_buckets``."""
    n_buckets = check_n_buckets(n_buckets)
    vals, _ = as_points(values)
    return quantized_binned(*bin_points(vals, np.ones_like(vals)), n_buckets=n_buckets)


def quantized_binned(values: np.ndarray, counts: np.ndarray, *, n_buckets: int = 10) -> list[Bucket]:
    """:func:`quantized` on binned points (ascending distinct values, the
    number of tasks with each value)."""
    cum = np.cumsum(counts)
    total = int(round(float(cum[-1])))
    # the cut ranks, computed in the same floating-point order as the reference
    cuts = [math.floor(1.0 * total / n_buckets)]
    cuts += [math.floor((1.0 + j) / n_buckets * total) for j in range(1, n_buckets)]
    buckets: list[Bucket] = []
    closed = 0
    for cut in cuts:
        if closed >= total:
            break
        rank = max(cut, closed + 1)
        upper = float(values[min(int(np.searchsorted(cum, rank - 0.5)), values.size - 1)])
        share = (rank - closed) / total
        if buckets and buckets[-1].upper == upper:
            buckets[-1] = Bucket(upper, buckets[-1].probability + share)
        else:
            buckets.append(Bucket(upper, share))
        closed = rank
    return buckets
