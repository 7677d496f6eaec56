"""Greedy bucketing (Phung & Thain, IPDPS 2024; Phung et al., WORKS 2021).

Sort the history by value and start with one bucket holding every point.
Repeatedly take a bucket and, over every break point inside it, compute the
expected cost (``bucketing.cost.split_costs``) of splitting it there into a
lower and an upper bucket; "no split" (break at the bucket's top) is one of
the candidates.  If the cheapest break is not the top, split and treat both
halves the same way; a bucket whose best break is its top is final.  Ties go
to the higher break point.  Bucket probabilities are the significance shares.

Exactness and speed: the reference implementation scans every break point with
a fresh loop over the bucket (quadratic per bucket, and it recomputes after
every task).  Here points with equal values are merged into one bin (exact for
the break values the reference can choose, since a bucket's bound is a value of
the history and equal values land in the same bucket) and each bucket's scan is
one vectorised numpy pass over prefix sums: O(bins) per bucket.  On random
integer-valued histories the buckets equal those of a direct transcription of
the reference cost scan (see ``tests/test_bucketing.py``).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .cost import split_costs
from .points import Bucket, as_points, bin_points


def greedy(values: Iterable[float], significance: Iterable[float] | None = None, *,
           deterministic: bool = False) -> list[Bucket]:
    """Greedy buckets of ``values`` (>= 0, any unit) weighted by
    ``significance`` (default: arrival index 1..n, later tasks weigh more).

    ``deterministic=True`` uses the cost of the deterministic policy (lowest
    bucket first, then the next one up).  Returns ascending buckets whose
    probabilities sum to 1.
    """
    vals, sig = as_points(values, significance)
    return greedy_binned(*bin_points(vals, sig), deterministic=deterministic)


def greedy_binned(values: np.ndarray, sig: np.ndarray, *, deterministic: bool = False) -> list[Bucket]:
    """:func:`greedy` on already binned points: ascending distinct ``values``
    with summed significance ``sig``."""
    k = values.size
    csig = np.empty(k + 1)   # prefix sums with a leading 0
    csig[0] = 0.0
    np.cumsum(sig, out=csig[1:])
    cwsum = np.empty(k + 1)
    cwsum[0] = 0.0
    np.cumsum(sig * values, out=cwsum[1:])
    breaks = [k - 1]
    stack = [(0, k - 1)] if k > 1 else []
    while stack:
        lo, hi = stack.pop()
        costs = split_costs(values, csig, cwsum, lo, hi, deterministic)
        # the last minimum: ties go to the higher break point
        i = hi - int(costs[::-1].argmin())
        if i == hi:
            continue
        breaks.append(i)
        if i > lo:
            stack.append((lo, i))
        if i + 1 < hi:
            stack.append((i + 1, hi))
    breaks.sort()
    uppers = values[breaks].tolist()
    cum = csig[1:][breaks].tolist()
    total = cum[-1]   # csig[k]: the last break is always k - 1
    out, below = [], 0.0
    for upper, c in zip(uppers, cum):
        out.append(Bucket(upper, (c - below) / total))
        below = c
    return out
