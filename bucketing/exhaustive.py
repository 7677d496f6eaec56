"""Exhaustive bucketing (Phung & Thain, IPDPS 2024).

For every bucket count n = 1..max_buckets, build candidate bucket bounds over
[0, max]: logarithmic steps 1, 2, 4, ... below max/n followed by n equal-width
steps up to the maximum; every point goes to the first candidate at or above
it, empty candidates are dropped and each bucket's bound is tightened to the
largest value it holds.  The candidate list with the lowest expected cost
(``bucketing.cost.ladder_cost``, probabilistic or deterministic policy) wins;
ties go to the smaller count.

Speed: points are binned by value and assigned to candidates with one
``searchsorted``; the cost of a candidate list is O(buckets²) vectorised, so a
recomputation costs O(max_buckets · (bins + buckets²)) independent of how many
tasks share a value.  The buckets equal those of the reference procedure
(same candidates, same cost, same tie rule).
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .cost import ladder_cost
from .points import Bucket, as_points, bin_points


def exhaustive(values: Iterable[float], significance: Iterable[float] | None = None, *,
               max_buckets: int = 10, deterministic: bool = False) -> list[Bucket]:
    """Exhaustive buckets of ``values`` (>= 0) weighted by ``significance``
    (default: arrival index 1..n), trying 1..``max_buckets`` buckets.

    ``deterministic=True`` scores candidates with the deterministic policy's
    cost.  Returns ascending buckets whose probabilities sum to 1.
    """
    if not isinstance(max_buckets, (int, np.integer)) or max_buckets < 1:
        raise ValueError(f"max_buckets must be an integer >= 1, got {max_buckets!r}")
    vals, sig = as_points(values, significance)
    return exhaustive_binned(*bin_points(vals, sig), max_buckets=max_buckets, deterministic=deterministic)


def candidate_bounds(max_value: float, n: int) -> np.ndarray:
    """Candidate upper bounds for ``n`` buckets: powers of two below
    ``max_value / n``, then ``max_value * i / n`` for i = 1..n."""
    steps = 0 if max_value <= 0 else max(0, math.floor(math.log(max_value / n) / math.log(2)))
    linear = [max_value * (i + 1) / n for i in range(n - 1)] + [max_value]
    return np.array([2.0 ** i for i in range(steps)] + linear)


def exhaustive_binned(values: np.ndarray, sig: np.ndarray, *, max_buckets: int = 10,
                      deterministic: bool = False) -> list[Bucket]:
    """:func:`exhaustive` on binned points (ascending distinct ``values`` with
    summed significance ``sig``)."""
    total = float(sig.sum())
    wsum = sig * values
    best_cost = None
    best: tuple[np.ndarray, np.ndarray] | None = None
    for n in range(1, max_buckets + 1):
        cands = candidate_bounds(float(values[-1]), n)
        slot = np.searchsorted(cands, values, side="left")
        # bins are sorted, so each non-empty slot is a contiguous run of bins
        last = np.flatnonzero(np.diff(slot, append=slot[-1] + 1))
        first = np.concatenate(([0], last[:-1] + 1))
        bsig = np.add.reduceat(sig, first)
        uppers = values[last]
        means = np.add.reduceat(wsum, first) / bsig
        probs = bsig / total
        cost = ladder_cost(uppers, probs, means, deterministic)
        if best_cost is None or cost < best_cost:
            best_cost, best = cost, (uppers, probs)
    assert best is not None
    return [Bucket(float(u), float(p)) for u, p in zip(*best)]
