"""Exhaustive bucketing (Phung & Thain, IPDPS 2024).

For every bucket count n = 1..max_buckets, build candidate bucket bounds over
[0, max]: logarithmic steps 1, 2, 4, ... below max/n followed by n equal-width
steps up to the maximum; every point goes to the first candidate at or above
it, empty candidates are dropped and each bucket's bound is tightened to the
largest value it holds.  The candidate list with the lowest expected cost
(``bucketing.cost.ladder_cost``, probabilistic or deterministic policy) wins;
ties go to the smaller count.

Speed: points are binned by value; a candidate's share and mean are
differences of prefix sums at its bound (one ``searchsorted`` of all
candidates of all counts), and every count's expected cost is evaluated in one
vectorised pass (``bucketing.cost.ladder_costs``), so a
recomputation costs O(bins + max_buckets² · log bins) numpy work.  The buckets equal those of the reference procedure
(same candidates, same cost, same tie rule).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache

import numpy as np

from .cost import ladder_costs
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


_LOG2 = math.log(2)


def _steps(max_value: float, max_buckets: int) -> tuple[int, ...]:
    """Number of power-of-two candidates of every count 1..max_buckets (as
    :func:`candidate_bounds` computes them)."""
    if max_value <= 0:
        return (0,) * max_buckets
    return tuple(max(0, math.floor(math.log(max_value / n) / _LOG2)) for n in range(1, max_buckets + 1))


@lru_cache(maxsize=256)
def _layout(steps: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                              np.ndarray, np.ndarray, np.ndarray]:
    """Where each count's candidates sit when all counts are concatenated, given
    their numbers of power-of-two steps: the powers (zeros at the linear slots),
    the positions, numerators and denominators of the linear candidates
    ``max * (i + 1) / n`` (i < n - 1), the positions of each count's last
    candidate (``max`` itself), the count index of every candidate, each
    candidate's previous candidate of the same count (index into a leading-zero
    array: 0 for a count's first) and the mask of each count's first candidate.
    The maximum only scales the linear candidates, so this depends on the steps
    alone and is shared by every history whose maximum gives the same steps."""
    powers, lin_pos, lin_num, lin_den, last_pos, seg = [], [], [], [], [], []
    for n, k in enumerate(steps, 1):
        powers += [2.0 ** i for i in range(k)] + [0.0] * n
        base = len(seg) + k
        lin_pos += range(base, base + n - 1)
        lin_num += [float(i + 1) for i in range(n - 1)]
        lin_den += [float(n)] * (n - 1)
        last_pos.append(base + n - 1)
        seg += [n - 1] * (k + n)
    seg_arr = np.array(seg)
    first = np.concatenate(([True], seg_arr[1:] != seg_arr[:-1]))
    prev = np.where(first, 0, np.arange(seg_arr.size))
    return (np.array(powers), np.array(lin_pos, dtype=np.intp), np.array(lin_num), np.array(lin_den),
            np.array(last_pos, dtype=np.intp), seg_arr, prev, first)


@lru_cache(maxsize=512)
def _all_candidates(max_value: float, max_buckets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates of every count 1..max_buckets concatenated (equal to the
    concatenated :func:`candidate_bounds`), the count index of each, and each
    candidate's previous one of the same count (0 for a count's first; index
    into an array with a leading zero)."""
    powers, lin_pos, lin_num, lin_den, last_pos, seg, prev, _ = _layout(_steps(max_value, max_buckets))
    cands = powers.copy()
    cands[lin_pos] = max_value * lin_num / lin_den
    cands[last_pos] = max_value
    return cands, seg, prev


def exhaustive_binned(values: np.ndarray, sig: np.ndarray, *, max_buckets: int = 10,
                      deterministic: bool = False) -> list[Bucket]:
    """:func:`exhaustive` on binned points (ascending distinct ``values`` with
    summed significance ``sig``).

    All bucket counts are scored in one vectorised pass: a candidate's
    significance and value sums are differences of prefix sums at the
    candidate bounds, so no pass over the points is needed per count.
    """
    csig = np.concatenate(([0.0], np.cumsum(sig)))
    cwsum = np.concatenate(([0.0], np.cumsum(sig * values)))
    total = csig[-1]
    cands, seg, prev = _all_candidates(float(values[-1]), max_buckets)
    idx = np.searchsorted(values, cands, side="right")  # bins up to each candidate
    cs, cw = csig[idx], cwsum[idx]
    prev_s = np.concatenate(([0.0], cs))[prev]   # 0 before a count's first candidate
    prev_w = np.concatenate(([0.0], cw))[prev]
    gsig = cs - prev_s
    keep = gsig > 0  # empty candidates are dropped
    seg = seg[keep]
    gsig = gsig[keep]
    uppers = values[idx[keep] - 1]  # the largest value at or below the candidate
    means = (cw - prev_w)[keep] / gsig
    probs = gsig / total
    # every count keeps at least its last candidate (the maximum), so each has a segment
    lengths = np.bincount(seg, minlength=max_buckets)
    starts = np.zeros(max_buckets, dtype=np.intp)
    np.cumsum(lengths[:-1], out=starts[1:])
    costs = ladder_costs(uppers, probs, means, starts, lengths, deterministic)
    best = int(costs.argmin())  # the first minimum: ties go to the smaller count
    lo = int(starts[best])
    hi = lo + int(lengths[best])
    return [Bucket(u, p) for u, p in zip(uppers[lo:hi].tolist(), probs[lo:hi].tolist())]
