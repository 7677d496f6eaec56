"""Cost-optimal retry ladders.

A replay (or a real run) charges every attempt its allocation times the task's
wall time.  For a ladder of allocations a_1 < a_2 < ... (first attempt a_1,
then the next rung after each failure) the expected charge of the next task is
``sum_j a_j * W(usage > a_{j-1})``, ``W`` the (significance x wall time) weight
of history above a rung.  :func:`optimal_ladder` finds the ladder minimising it
by dynamic programming over the history's distinct values (a monotone
convex-hull pass, O(levels)), capped at ``max_levels`` weighted quantiles.  A
deterministic ladder is optimal for this objective: drawing allocations at
random cannot lower an expected cost below the best fixed ladder.

``optimal_binned`` gives the same ladder as buckets, for ``BucketingState``:
each rung's probability is the share of weight it is the first fit for.
"""
from __future__ import annotations

import math

import numpy as np

from .points import Bucket


def optimal_ladder(values: np.ndarray, weights: np.ndarray, max_levels: int = 96,
                   fail_weights: np.ndarray | None = None, retry_cost: float = 0.0,
                   tail: tuple[float, float, float] | None = None) -> list[float]:
    """The ladder (ascending allocations, the last one = the largest value)
    minimising ``sum_j a_j * (W(value > a_{j-1}) + retry_cost * F(value > a_j))``
    (with ``W(value > a_0)`` the total weight) over the binned history
    ``values`` (ascending, distinct) with ``weights`` (> 0, e.g. significance x
    wall time); ``F`` sums ``fail_weights`` (e.g. significance alone): every
    failed attempt at a rung is charged ``retry_cost`` seconds at that rung.
    When there are more than ``max_levels`` distinct values the rungs are
    chosen among ``max_levels`` weighted quantiles (always including the maximum).

    ``tail``: ``(value, weight, fail_weight)`` of a point above every value
    (what the next task may use past the largest one seen, see
    :func:`optimal_binned`); the ladder then ends at ``value``."""
    k = values.size
    cum = np.cumsum(weights)
    total = float(cum[-1])
    fcum = np.cumsum(fail_weights) if fail_weights is not None and retry_cost > 0 else None
    if k > max_levels:
        idx = np.searchsorted(cum, np.arange(1, max_levels + 1) * (total * (1 - 1e-12) / max_levels))
        idx[-1] = k - 1
        idx = idx[np.concatenate(([True], idx[1:] != idx[:-1]))]  # targets ascend, so idx does
        levels = values[idx].tolist()
        above = (total - cum[idx]).tolist()
        fail = None if fcum is None else ((fcum[-1] - fcum[idx]) * retry_cost).tolist()
    else:
        levels = values.tolist()
        above = (total - cum).tolist()
        fail = None if fcum is None else ((fcum[-1] - fcum) * retry_cost).tolist()
    if tail is not None:
        t_value, t_weight, t_fail = tail
        levels.append(float(t_value))
        above = [a + t_weight for a in above] + [0.0]
        total += t_weight
        if fail is not None:
            fail = [f + t_fail * retry_cost for f in fail] + [0.0]
    m = len(levels)
    # the retry charge of a rung (its failures) is part of the line's height
    extra = [0.0] * m if fail is None else [levels[j] * fail[j] for j in range(m)]
    # best[j]: cost still to pay once every task <= levels[j] has succeeded
    #        = min over l > j of above[j] * levels[l] + best[l].
    # Each l is a line x -> levels[l] * x + best[l]; lines arrive with decreasing
    # slopes and queries x = above[j] increase, so a monotone convex hull answers
    # every query in amortised O(1).
    best = [0.0] * m
    nxt = [m - 1] * m
    slopes: list[float] = []
    heights: list[float] = []
    lines: list[int] = []
    head = 0
    for j in range(m - 2, -1, -1):
        s3 = levels[j + 1]
        b3 = best[j + 1] + extra[j + 1]
        while len(slopes) - head >= 2:
            s1, b1, s2, b2 = slopes[-2], heights[-2], slopes[-1], heights[-1]
            if (b3 - b1) * (s1 - s2) <= (b2 - b1) * (s1 - s3):
                slopes.pop()
                heights.pop()
                lines.pop()
            else:
                break
        slopes.append(s3)
        heights.append(b3)
        lines.append(j + 1)
        last = len(slopes) - 1
        if head > last:
            head = last
        x = above[j]
        value = slopes[head] * x + heights[head]
        while head < last:
            candidate = slopes[head + 1] * x + heights[head + 1]
            if candidate > value:
                break
            head += 1
            value = candidate
        best[j] = value
        nxt[j] = lines[head]
    start = [total * levels[j] + extra[j] + best[j] for j in range(m)]
    j = min(range(m), key=start.__getitem__)
    ladder = [levels[j]]
    while j != m - 1:
        j = nxt[j]
        ladder.append(levels[j])
    return ladder


def optimal_binned(values: np.ndarray, weights: np.ndarray, fail_weights: np.ndarray | None = None,
                   counts: np.ndarray | None = None, *, max_levels: int = 96, retry_cost: float = 0.0,
                   tail_ratio: float = 0.0, cap: float = math.inf) -> list[Bucket]:
    """:func:`optimal_ladder` as buckets (upper = rung, probability = share of
    ``weights`` whose first fitting rung it is).

    ``tail_ratio`` > 1 (with ``counts``, the tasks behind each value): the next
    task exceeds every one of the n seen with probability 1 / (n + 1) whatever
    the distribution (exchangeability), and then needs the retry past the
    maximum, charged here at ``tail_ratio`` x the maximum, at most ``cap``
    (the machine size).  That point, with 1 / n of the weights, is part of the
    ladder's cost: when a failure past the maximum costs more than the slack
    above it saves (few tasks seen, a maximum close to the machine size, a
    high ``retry_cost``) the ladder starts above the maximum; its last rung is
    then that point, with the tail's share as its probability."""
    tail = None
    top = float(values[-1])
    above = min(top * tail_ratio, cap)
    if tail_ratio > 1 and counts is not None and above > top:
        n = float(counts.sum())
        tail = (above, float(weights.sum()) / n, 0.0 if fail_weights is None else float(fail_weights.sum()) / n)
    ladder = optimal_ladder(values, weights, max_levels, fail_weights, retry_cost, tail)
    cum = np.cumsum(weights)
    total = float(cum[-1]) + (0.0 if tail is None else tail[1])
    real = ladder if tail is None else ladder[:-1]
    idx = np.searchsorted(values, real)
    below = np.concatenate(([0.0], cum[idx[:-1]])) if len(real) else np.zeros(0)
    probs = ((cum[idx] - below) / total).tolist()
    if tail is not None:
        probs.append((total - (float(cum[idx[-1]]) if len(real) else 0.0)) / total)
    return [Bucket(float(u), float(p)) for u, p in zip(ladder, probs)]
