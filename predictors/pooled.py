"""The pooled prior of ``auto``: each candidate's counterfactual cost on all
categories' tasks of the same age, and the paired test that lets a young
category leave its default only on evidence beyond chance (see
:mod:`predictors.leader`)."""
from __future__ import annotations

import math

#: Age strata of the pooled prior: a category's task with 0, 1, 2-3, 4-7, ... 64+ earlier tasks.
STRATA = 8


def stratum(age: int) -> int:
    """Age stratum of a category's task that has ``age`` earlier tasks."""
    return min(age.bit_length(), STRATA - 1)


def paired_better(diff: float, diff2: float, w: float, w2: float, z: float, min_tasks: float) -> bool:
    """A one-sided paired test: with ``diff`` and ``diff2`` the weighted sums of
    per-task cost differences (challenger - incumbent) and of their squares, and
    ``w``, ``w2`` the sums of the weights and of their squares, is the weighted
    mean difference below 0 by more than ``z`` standard errors? Never with fewer
    than ``min_tasks`` effective tasks ((sum w)^2 / sum w^2)."""
    if diff >= 0 or w * w < min_tasks * w2:
        return False
    mean = diff / w
    var = max(diff2 / w - mean * mean, 0.0)
    return -diff > z * math.sqrt(var * w2)


class Pool:
    """One age stratum of one resource, across categories: each candidate's
    discounted cost, the discounted oracle cost (used resource.time), and the
    paired differences to the stratum's default candidate ``base``; the clock
    ticks at every task added, whatever its category."""

    __slots__ = ("base", "cost", "weight", "decay", "clock", "diff", "diff2", "w", "w2")

    def __init__(self, k: int, decay: float, base: int) -> None:
        self.base = base
        self.cost = [0.0] * k
        self.weight = 0.0
        self.decay = decay
        self.clock = 0
        self.diff = [0.0] * k
        self.diff2 = [0.0] * k
        self.w = 0.0
        self.w2 = 0.0

    def add(self, costs: list[float], oracle: float) -> None:
        d = self.decay
        self.weight = self.weight * d + oracle
        r, diff, diff2 = self.cost, self.diff, self.diff2
        base = costs[self.base]
        for i, c in enumerate(costs):
            r[i] = r[i] * d + c
            x = c - base
            diff[i] = diff[i] * d + x
            diff2[i] = diff2[i] * d + x * x
        self.w = self.w * d + 1.0
        self.w2 = self.w2 * d * d + 1.0
        self.clock += 1

    def better(self, i: int, z: float, min_tasks: float) -> bool:
        """Is candidate ``i`` cheaper than ``base`` on these tasks beyond chance?"""
        return paired_better(self.diff[i], self.diff2[i], self.w, self.w2, z, min_tasks)


__all__ = ["Pool", "STRATA", "paired_better", "stratum"]
