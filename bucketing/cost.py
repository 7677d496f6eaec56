"""Expected-cost models of allocating from buckets (Phung & Thain, IPDPS 2024).

A task's cost is the sum of the allocations of all its attempts: a task larger
than its allocation fails, is charged that allocation, and retries higher;
the successful attempt is charged its allocation minus what the task uses
(``upper - mean``), i.e. costs are *waste* in value units (MB for memory).

Two allocation policies are modelled:

probabilistic
    a task gets bucket *j* with the bucket's probability ``p_j``; after a
    failure in bucket *j* it gets a bucket above *j*, drawn with the
    probabilities of the buckets above renormalised to sum to 1.
deterministic
    a task first gets the lowest bucket, then the next bucket up after every
    failure.

``split_costs`` is the cost used by greedy bucketing to choose where to split
one bucket in two; ``ladder_cost`` the cost of a whole list of buckets used by
exhaustive bucketing.  Both take prefix sums so the greedy scan over all break
points of a range is one vectorised pass instead of a loop per break point.
"""
from __future__ import annotations

import numpy as np


def split_costs(values: np.ndarray, csig: np.ndarray, cwsum: np.ndarray, lo: int, hi: int,
                deterministic: bool) -> np.ndarray:
    """Expected cost of splitting the bins ``lo..hi`` (inclusive) after each bin.

    ``values``: ascending bin values; ``csig``/``cwsum``: prefix sums (with a
    leading 0) of significance and significance*value.  Entry ``i - lo`` is the
    cost of a lower bucket ``lo..i`` (upper bound ``values[i]``) and an upper
    bucket ``i+1..hi`` (upper bound ``values[hi]``); the last entry (no split)
    is the cost of keeping one bucket.

    probabilistic: ``p1²(b-e1) + p1p2(m-e1) + p2p1(b+m-e2) + p2²(m-e2)``;
    deterministic: ``p1(b-e1) + p2(b+m-e2)``, with ``p1, p2`` the lower and
    upper buckets' shares, ``e1, e2`` their mean values, ``b`` the break value
    and ``m`` the range maximum.
    """
    # greedy calls this for every bucket after every task of a young category, on a few
    # dozen bins: numpy's per-call overhead, not the arithmetic, is the cost, so as few
    # temporaries as the formula allows (the same operations in the same order as written
    # in the docstring: bit for bit the same costs)
    base = csig[lo]
    total = csig[hi + 1] - base
    low_sig = csig[lo + 1:hi + 2] - base
    high_sig = total - low_sig
    b = values[lo:hi + 1]
    m = values[hi]
    cw = cwsum[lo + 1:hi + 2]
    e1 = (cw - cwsum[lo]) / low_sig
    # e2: the upper bucket's mean, 0 where it is empty (always the last entry, "no split")
    n = hi - lo
    e2 = np.zeros(n + 1)
    if n:
        high = high_sig[:n]
        if high.min() > 0:
            np.divide(cwsum[hi + 1] - cw[:n], high, out=e2[:n])
        else:  # significance below the sum's rounding: an upper bucket that weighs nothing
            with np.errstate(invalid="ignore", divide="ignore"):
                e2[:n] = (cwsum[hi + 1] - cw[:n]) / high
            e2[:n][high <= 0] = 0.0
    p1 = low_sig / total
    p2 = high_sig / total
    if deterministic:
        return p1 * (b - e1) + p2 * (b + m - e2)
    p12 = p1 * p2   # p2 * p1 is the same double: multiplication commutes exactly
    return p1 * p1 * (b - e1) + p12 * (m - e1) + p12 * (b + m - e2) + p2 * p2 * (m - e2)


def ladder_cost(uppers: np.ndarray, probs: np.ndarray, means: np.ndarray, deterministic: bool) -> float:
    """Expected cost of allocating from the buckets ``uppers`` (ascending) with
    shares ``probs`` (summing to 1) to a task whose value falls in bucket *i*
    with probability ``probs[i]`` and then has mean ``means[i]``.

    deterministic: a task of bucket *i* pays every upper bound up to its own,
    minus its mean: ``sum_i p_i (sum_{k<=i} u_k - e_i)``.

    probabilistic: ``sum_i sum_j p_i p_j c[i, j]`` where ``c[i, j]`` is the cost
    of a task of bucket *i* first given bucket *j*: ``u_j - e_i`` when
    ``j >= i``, else ``u_j`` plus the renormalised expectation of ``c[i, k]``
    over the buckets ``k > j``.  Evaluated in closed form, O(n) instead of the
    O(n^2) table: with G_i(j) the expected cost of a task of bucket i whose
    allocation is drawn from buckets >= j, G_i(j) = G_i(j+1) + p_j u_j / P(>=j)
    for j < i, and G_i(j) = (sum_{k>=j} p_k u_k) / P(>=j) - e_i for j >= i; the
    answer is sum_i p_i G_i(0).
    """
    n = uppers.size
    return float(ladder_costs(uppers, probs, means, np.array([0]), np.array([n]), deterministic)[0])


def ladder_costs(uppers: np.ndarray, probs: np.ndarray, means: np.ndarray, starts: np.ndarray,
                 lengths: np.ndarray, deterministic: bool) -> np.ndarray:
    """:func:`ladder_cost` of several bucket lists at once: the arrays hold the
    lists one after the other, list *s* starting at ``starts[s]`` with
    ``lengths[s]`` buckets (each list's ``probs`` summing to 1)."""
    if deterministic:
        terms = probs * (segment_cumsum(uppers, starts, lengths) - means)
    else:
        pu = probs * uppers
        tail_p = np.repeat(np.add.reduceat(probs, starts), lengths) - segment_cumsum(probs, starts, lengths) + probs
        tail_pu = np.repeat(np.add.reduceat(pu, starts), lengths) - segment_cumsum(pu, starts, lengths) + pu
        step = pu / tail_p
        terms = probs * (segment_cumsum(step, starts, lengths) - step + tail_pu / tail_p - means)
    return np.add.reduceat(terms, starts)


def segment_cumsum(x: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum of ``x`` restarted at every segment start."""
    c = np.cumsum(x)
    offsets = np.concatenate(([0.0], c[starts[1:] - 1]))
    return c - np.repeat(offsets, lengths)
