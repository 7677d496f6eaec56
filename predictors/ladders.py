"""The candidate ladders of one category and resource, for ``adaptive``.

:func:`ladder_charge` is what a retry ladder charges one task;
:class:`LadderHistory` keeps a category's history (its own
``bucketing.BucketingState``, or one shared with other predictors), builds
the candidate ladders ("experts") from it and scores each on every task
before learning it (see :mod:`predictors.adaptive`).
"""
from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from itertools import accumulate
from typing import Any

from bucketing import BucketingState

from .bucketed import next_step
from .gaps import gap_step

#: The candidate ladders, in order of preference on ties.
EXPERTS = ("optimal", "greedy-det", "max")


def ladder_charge(ladder: list[float], prefix: list[float], usage: float, growth: float,
                  cap: float = math.inf, wall: float = 1.0, retry_cost: float = 0.0,
                  steps: list[float] = ()) -> float:
    """What a task using ``usage`` for ``wall`` s is charged climbing ``ladder``
    (``prefix``: its running sums): every rung up to the first that fits; past
    the top rung the escalation ``steps`` (ascending, between the top and
    ``growth`` x the top), then the top times ``growth``, ``growth``^2, ...;
    each at most ``cap`` (the machine size); each rung times ``wall``, plus
    ``retry_cost`` s at every failed rung."""
    i = bisect_left(ladder, usage)
    if i < len(ladder):
        return prefix[i] * wall + (prefix[i - 1] * retry_cost if i > 0 and retry_cost else 0.0)
    total, a = prefix[-1], ladder[-1]
    top = a
    failed = total
    if a <= 0:
        return (total + usage) * wall + total * retry_cost
    for step in steps:
        if a >= usage:
            break
        if a >= cap:
            return total * wall
        failed = total
        a = min(step, cap)
        total += a
    while a < usage:
        if a >= cap:
            return total * wall  # cannot run anywhere; every policy pays the same
        failed = total
        a = min(next_step(a, top, growth), cap)
        total += a
    return total * wall + failed * retry_cost


def history_views(max_levels: int, growth: float, scored: bool, cap: float = math.inf,
                  retry_cost: float = 0.0) -> dict[str, tuple[str, dict[str, Any]]]:
    """The bucketings an ``adaptive`` history computes, by name: the ``optimal``
    ladder and, when scored, deterministic greedy buckets (``greedy-det``)."""
    views: dict[str, tuple[str, dict[str, Any]]] = {
        "optimal": ("optimal", {"max_levels": max_levels, "retry_cost": retry_cost, "tail_ratio": growth,
                                "cap": cap})}
    if scored:
        views["greedy-det"] = ("greedy", {"deterministic": True})
    return views


class LadderHistory:
    """The candidate ladders of one resource and their scores.  The history is
    a ``bucketing.BucketingState`` computing :func:`history_views` on one
    recompute schedule: its own, or ``shared`` with other predictors, with
    ``views`` mapping those names to the shared state's views; the owner of a
    shared state calls :meth:`score` with each value before adding it there,
    then :meth:`add`.  The "max" ladder follows every new maximum."""

    __slots__ = ("state", "views", "shared", "top", "built", "ladders", "prefixes", "scores", "best", "growth",
                 "scored", "cap", "retry_cost", "ratios", "prior", "steps", "steps_key")

    def __init__(self, recompute_growth: float, max_levels: int, growth: float, scored: bool,
                 cap: float = math.inf, retry_cost: float = 0.0, shared: BucketingState | None = None,
                 views: Mapping[str, str] | None = None) -> None:
        if shared is None:
            self.state = BucketingState.views(history_views(max_levels, growth, scored, cap, retry_cost),
                                              recompute_growth)
            self.views = ("optimal", "greedy-det")
        else:
            self.state = shared
            self.views = (views["optimal"], views["greedy-det"])
        self.shared = shared is not None
        self.top = -math.inf   # the largest value learnt
        self.built = -1        # the state's computed_at when the ladders were built
        # how far past the largest value seen a new maximum went (its ratio to the old
        # maximum), for the escalation past the top rung: a ladder of ratios, optimal
        # for the same cost, learnt from the category's own new maxima
        self.ratios = BucketingState("optimal", max_levels=32, retry_cost=retry_cost,
                                     recompute_growth=recompute_growth)
        self.prior: LadderHistory | None = None  # whose ratios to use while this one has none
        self.steps: list[float] = []
        self.steps_key: tuple[float, int, int] = (math.nan, -1, -1)  # (top, source, its computation)
        self.ladders: list[list[float]] | None = None
        self.prefixes: list[list[float]] = []
        self.scores = [0.0] * len(EXPERTS)
        self.best = 0  # index of the expert with the lowest score
        self.growth = growth
        self.scored = scored  # False for the pooled prior: only the first ladder is used
        self.cap = cap
        self.retry_cost = retry_cost

    def __len__(self) -> int:
        return len(self.state)

    def _refresh(self) -> list[list[float]] | None:
        state = self.state
        if len(state) == 0:
            return None
        # a shared history may have been recomputed by another reader since the ladders were built
        if self.ladders is None or state.stale() or self.built != state.computed_at:
            time_ladder = [b.upper for b in state.buckets(self.views[0])]
            if len(time_ladder) > 1 and time_ladder[-2] == state.max:
                # the tail's rung after the maximum is where the escalation goes anyway
                time_ladder.pop()
            greedy_ladder = [b.upper for b in state.buckets(self.views[1])] if self.scored else time_ladder
            self.ladders = [time_ladder, greedy_ladder, [state.max]]
            self.prefixes = [list(accumulate(lad)) for lad in self.ladders]
            self.built = state.computed_at
        elif self.ladders[2][0] != state.max:  # the "max" ladder follows every new maximum
            self.ladders[2] = self.prefixes[2] = [state.max]
        return self.ladders

    def leader(self) -> int:
        """Index in :data:`EXPERTS` of the ladder predictions come from."""
        return self.best

    def escalation(self, top: float) -> list[float]:
        """Allocations to try past ``top`` (the largest value seen), ascending:
        ``top`` times the rungs below ``growth`` of the learnt ratio ladder
        (this history's new maxima, else the prior's); empty when neither has
        seen a new maximum.  Only rungs below ``growth`` refine the doubling:
        one early jump (a category's second task 10x its first) must not
        turn every later retry into a 10x one."""
        source = self.ratios if len(self.ratios) or self.prior is None else self.prior.ratios
        if not len(source):
            return []
        ratios = source.buckets()
        key = (top, id(source), source.computed_at)
        if key != self.steps_key:
            self.steps = [top * b.upper for b in ratios if 1.0 < b.upper < self.growth]
            self.steps_key = key
        return self.steps

    def into_gap(self, previous: float, rung: float) -> float:
        """The retry after ``previous`` (a rung) failed, where the ladder's next
        rung is ``rung``: ``previous`` x growth instead when the task is likely
        enough to lie just above ``previous``, in the gap below the next value
        seen, for the smaller step to cost less in expectation."""
        if not (previous > 0 and rung > previous * self.growth):
            return rung
        above, nearest = self.state.above(previous)
        penalty = 1.0 + (self.retry_cost / self.state.mean_wall() if self.retry_cost else 0.0)
        return gap_step(previous, rung, above, nearest, self.growth, penalty)

    def learn_ratio(self, ratio: float, wall: float) -> None:
        self.ratios.add(ratio, wall)

    def ladder(self) -> list[float] | None:
        ladders = self._refresh()
        return None if ladders is None else ladders[self.best]

    def score(self, value: float, wall: float) -> None:
        """Charge every ladder what it would have cost a task using ``value``
        for ``wall`` s, before the history learns it (:meth:`add` does this
        itself; the owner of a shared history calls it before adding there)."""
        if self.scored and self._refresh() is not None:
            sig = float(len(self.state) + 1)
            scores = self.scores
            steps = self.escalation(self.state.max)
            for e, (lad, pre) in enumerate(zip(self.ladders, self.prefixes)):
                scores[e] += sig * ladder_charge(lad, pre, value, self.growth, self.cap, wall, self.retry_cost,
                                                 steps if lad[-1] == self.state.max else ())
            self.best = min(range(len(scores)), key=scores.__getitem__)

    def add(self, value: float, wall: float) -> float | None:
        """Learn ``value`` of a task that ran ``wall`` s (> 0); returns its ratio
        to the previous maximum when it is a new maximum (learnt here too).  A
        shared history already holds it (scored by its owner's :meth:`score`)."""
        top = self.top
        if not self.shared:
            self.score(value, wall)
            self.state.add(value, wall)
        if value > top:
            self.top = value
        if self.scored and top > 0 and value > top:
            ratio = value / top
            self.ratios.add(ratio, wall)
            return ratio
        return None


__all__ = ["EXPERTS", "LadderHistory", "history_views", "ladder_charge"]
