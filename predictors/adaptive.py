"""``adaptive``: lfm's own predictor - cost-optimal retry ladders, chosen online.

What it does differently from the published bucketing policies, and why:

* **The real cost model, solved exactly.**  A replay (or a real run) charges
  every attempt its allocation times the task's wall time.  For a ladder of
  allocations a_1 < a_2 < ... (first attempt a_1, then the next rung after each
  failure) the expected charge of the next task is
  ``sum_j a_j * W(usage > a_{j-1})``, ``W`` the weight of history above a rung.
  :func:`optimal_ladder` finds the ladder minimising it by dynamic programming
  (a convex-hull-trick pass, O(levels)) over the history's distinct values,
  capped at ``max_levels`` weighted quantiles.  A deterministic ladder is
  optimal here: drawing allocations at random cannot lower an expected cost
  below the best fixed ladder.
* **Several ladders, the one that would have cost least wins.**  The history
  is turned into candidate ladders ("experts"): the optimal ladder with tasks
  weighted by recency x wall time (long tasks dominate allocated x time),
  deterministic greedy buckets (weighted by recency only: wall times are
  heavy-tailed and can make the optimal ladder chase a few long tasks), and
  the maximum seen.  Before each task is learned, every expert's ladder is
  charged what it would have cost on that task (its rungs up to the usage,
  times the wall time, times the task's recency); predictions come from the
  expert with the lowest accumulated charge (follow the leader).  This is online model
  selection on the replay's own metric, so it adapts to each category's
  workload instead of fixing one model for all.
* **No blind sampling phase.**  Ladders are used from the first observation
  of a category.  A category never seen before starts from the ladder of all
  categories pooled (a prior); with no history at all, a geometric probe from a
  small first allocation (``cold_start``, by default 1/16 of the published
  default, e.g. 62.5 MB) doubling after each failure, which costs at most
  about 4x the usage instead of the fixed 1000 MB that wastes most of a small
  task's allocation.
* **Past the known range** a retry multiplies the failed allocation by
  ``growth`` (2).

Ladders are recomputed on the schedule of ``bucketing.BucketingState``
(``recompute_growth``: every task below 100 observations, then every 1 % more).

Measured (AE_time with the reference replay semantics; "best reference" is the
best non-oracle row of ``../shared/anchors/cctools-replay.csv``):

==============================  ==============  ===========  ===========
trace                           grouping        adaptive     best ref.
==============================  ==============  ===========  ===========
bioblast                        per category    0.8968       0.8933
bioblast                        one group       0.8418       0.8120
lobsterCMSsimulation            per category    0.8700       0.8584
lobsterCMSsimulation            one group       0.8521       0.8412
lobsterCMSsimulation[:4000]     per category    0.8919       0.8906
lobsterCMSsimulation[:4000]     one group       0.8807       0.8783
blast-medium-001                per category    0.8632       0.8564
blast-medium-001                one group       0.8628       0.8580
bwa-small-001                   per category    0.4138       0.1608
bwa-small-001                   one group       0.4118       0.1785
==============================  ==============  ===========  ===========

On synthetic workloads (3,000 tasks, one group) it is the best predictor for
normal, exponential, bimodal, trimodal and beta memory, and within 0.003 of
the best for uniform; on shuffled prefixes of lobsterCMSsimulation (a
stationary, nearly unimodal workload) it trails max-seen by up to 0.004.
Speed: lobsterCMSsimulation replays at ~35,000 tasks/s per category and
~60,000 as one group (one core, lightly loaded).
"""
from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from bucketing.greedy import greedy_binned

from .base import KNOWN_RESOURCES, Predictor
from .registry import register

#: The candidate ladders, in order of preference on ties.
EXPERTS = ("optimal", "greedy-det", "max")


def optimal_ladder(values: np.ndarray, weights: np.ndarray, max_levels: int = 96) -> list[float]:
    """The ladder (ascending allocations, the last one = the largest value)
    minimising ``sum_j a_j * W(value > a_{j-1})`` (with ``W(value > a_0)`` the
    total weight) over the binned history ``values`` (ascending, distinct) with
    ``weights`` (> 0).  When there are more than ``max_levels`` distinct values
    the rungs are chosen among ``max_levels`` weighted quantiles (always
    including the maximum)."""
    k = values.size
    cum = np.cumsum(weights)
    total = float(cum[-1])
    if k > max_levels:
        idx = np.searchsorted(cum, np.arange(1, max_levels + 1) * (total * (1 - 1e-12) / max_levels))
        idx[-1] = k - 1
        idx = idx[np.concatenate(([True], idx[1:] != idx[:-1]))]  # targets ascend, so idx does
        levels = values[idx].tolist()
        above = (total - cum[idx]).tolist()
    else:
        levels = values.tolist()
        above = (total - cum).tolist()
    m = len(levels)
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
        b3 = best[j + 1]
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
    start = [total * levels[j] + best[j] for j in range(m)]
    j = min(range(m), key=start.__getitem__)
    ladder = [levels[j]]
    while j != m - 1:
        j = nxt[j]
        ladder.append(levels[j])
    return ladder


def ladder_charge(ladder: list[float], prefix: list[float], usage: float, growth: float,
                  cap: float = math.inf) -> float:
    """What a task using ``usage`` is charged climbing ``ladder`` (``prefix``:
    its running sums): every rung up to the first that fits, and past the top
    rung ``growth`` steps, each at most ``cap`` (the machine size)."""
    i = bisect_left(ladder, usage)
    if i < len(ladder):
        return prefix[i]
    total, a = prefix[-1], ladder[-1]
    if a <= 0:
        return total + usage
    while a < usage:
        if a >= cap:
            return total  # cannot run anywhere; every policy pays the same
        a = min(a * growth, cap)
        total += a
    return total


class _History:
    """Binned history of one resource with candidate ladders and their scores.

    Each distinct value keeps two summed weights: significance (arrival index,
    later tasks weigh more) and significance x wall time.
    """

    __slots__ = ("index", "vals", "sig", "sig_time", "sorted", "order", "next_sig", "top", "ladders",
                 "prefixes", "scores", "best", "computed_at", "recompute_growth", "max_levels", "growth",
                 "scored", "cap")

    def __init__(self, recompute_growth: float, max_levels: int, growth: float, scored: bool,
                 cap: float = math.inf) -> None:
        self.index: dict[float, int] = {}
        self.vals: list[float] = []
        self.sig: list[float] = []
        self.sig_time: list[float] = []
        self.sorted: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.order: np.ndarray | None = None  # argsort of vals; kept until a new value arrives
        self.next_sig = 1
        self.top = -math.inf
        self.ladders: list[list[float]] | None = None
        self.prefixes: list[list[float]] = []
        self.scores = [0.0] * len(EXPERTS)
        self.best = 0  # index of the expert with the lowest score
        self.computed_at = 0
        self.recompute_growth = recompute_growth
        self.max_levels = max_levels
        self.growth = growth
        self.scored = scored  # False for the pooled prior: only the first ladder is used
        self.cap = cap

    def __len__(self) -> int:
        return self.next_sig - 1

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.sorted is None:
            vals = np.array(self.vals)
            if self.order is None:
                self.order = np.argsort(vals, kind="stable")
            order = self.order
            self.sorted = (vals[order], np.array(self.sig)[order], np.array(self.sig_time)[order])
        return self.sorted

    def _refresh(self) -> list[list[float]] | None:
        n = self.next_sig - 1
        if n == 0:
            return None
        if self.ladders is None or n - self.computed_at >= max(1, int(self.recompute_growth * n)):
            values, sig, sig_time = self._arrays()
            time_ladder = optimal_ladder(values, sig_time, self.max_levels)
            greedy_ladder = [b.upper for b in greedy_binned(values, sig, deterministic=True)] \
                if self.scored else time_ladder
            self.ladders = [time_ladder, greedy_ladder, [self.top]]
            self.prefixes = [np.cumsum(lad).tolist() for lad in self.ladders]
            self.computed_at = n
        elif self.ladders[2][0] != self.top:  # the "max" ladder follows every new maximum
            self.ladders[2] = self.prefixes[2] = [self.top]
        return self.ladders

    def leader(self) -> int:
        """Index in :data:`EXPERTS` of the ladder predictions come from."""
        return self.best

    def ladder(self) -> list[float] | None:
        ladders = self._refresh()
        return None if ladders is None else ladders[self.best]

    def add(self, value: float, wall: float) -> None:
        sig = float(self.next_sig)
        if self.scored and self._refresh() is not None:
            charge = sig * (wall if wall > 0 else 1.0)
            scores = self.scores
            for e, (lad, pre) in enumerate(zip(self.ladders, self.prefixes)):
                scores[e] += charge * ladder_charge(lad, pre, value, self.growth, self.cap)
            self.best = min(range(len(scores)), key=scores.__getitem__)
        i = self.index.get(value)
        if i is None:
            self.index[value] = len(self.vals)
            self.vals.append(value)
            self.sig.append(sig)
            self.sig_time.append(sig * (wall if wall > 0 else 1.0))
            self.order = None
        else:
            self.sig[i] += sig
            self.sig_time[i] += sig * (wall if wall > 0 else 1.0)
        if value > self.top:
            self.top = value
        self.sorted = None
        self.next_sig += 1


class AdaptiveState:
    """Per-(category, resource) state of :class:`AdaptivePredictor`."""

    __slots__ = ("own", "pool", "cold", "growth", "owner")

    def __init__(self, own: _History, pool: _History, cold: float, growth: float,
                 owner: "AdaptivePredictor") -> None:
        self.own = own
        self.pool = pool
        self.cold = cold
        self.growth = growth
        self.owner = owner

    def _ladder(self) -> list[float] | None:
        ladder = self.own.ladder()
        return ladder if ladder is not None else self.pool.ladder()

    def first(self) -> float:
        ladder = self._ladder()
        return self.cold if ladder is None else ladder[0]

    def retry(self, previous: float) -> float:
        for rung in self._ladder() or ():
            if rung > previous:
                return rung
        return previous * self.growth if previous > 0 else self.cold

    def observe(self, value: float) -> None:
        wall = self.owner._wall
        self.own.add(value, wall)
        self.pool.add(value, wall)

    def describe(self) -> dict[str, Any]:
        own = len(self.own) > 0
        return {"tasks": len(self.own), "buckets": self._ladder() or [self.cold],
                "expert": EXPERTS[self.own.leader()] if own else ("pooled" if len(self.pool) else "probe")}


@register("adaptive")
class AdaptivePredictor(Predictor):
    """lfm's own predictor: cost-optimal retry ladders per category, the best
    one chosen online (see the module docstring).

    Parameters: ``resources``, ``max_resources``, ``seed`` (see ``Predictor``;
    this predictor draws no random numbers);
    ``cold_start`` (None): first allocation per resource when nothing at all is
    known - a mapping resource -> value, by default 1/16 of
    ``KNOWN_RESOURCES`` (1 core for cores);
    ``growth`` (2.0): factor applied to a failed allocation past the ladder;
    ``time_weighted`` (True): use an observation's ``wall_time`` (seconds) for
    the time-weighted ladder and for scoring (False: every task counts 1 s);
    ``max_levels`` (96): candidate rungs for the dynamic programme;
    ``recompute_growth`` (0.01): ladder recompute schedule (0 = every task).
    """

    def __init__(self, resources: Iterable[str] = ("memory",), max_resources: Mapping[str, float] | None = None,
                 seed: int = 0, cold_start: Mapping[str, float] | None = None, growth: float = 2.0,
                 time_weighted: bool = True, max_levels: int = 96, recompute_growth: float = 0.01) -> None:
        super().__init__(resources, max_resources, seed)
        if not isinstance(growth, (int, float)) or not growth > 1 or math.isinf(growth):
            raise ValueError(f"growth must be a number > 1, got {growth!r}")
        if not isinstance(max_levels, (int, np.integer)) or max_levels < 2:
            raise ValueError(f"max_levels must be an integer >= 2, got {max_levels!r}")
        if not isinstance(recompute_growth, (int, float)) or not 0 <= recompute_growth < 1:
            raise ValueError(f"recompute_growth must be a fraction in [0, 1), got {recompute_growth!r}")
        cold = {r: (1.0 if r == "cores" else v / 16) for r, v in KNOWN_RESOURCES.items()}
        for r, v in (cold_start or {}).items():
            if r not in KNOWN_RESOURCES:
                raise ValueError(f"cold_start: unknown resource {r!r}; known resources: {', '.join(KNOWN_RESOURCES)}")
            if not isinstance(v, (int, float)) or not v > 0 or math.isinf(v):
                raise ValueError(f"cold_start[{r!r}] must be a number > 0, got {v!r}")
            cold[r] = float(v)
        self.cold_start = cold_start
        self.growth = growth
        self.time_weighted = time_weighted
        self.max_levels = max_levels
        self.recompute_growth = recompute_growth
        self._cold = cold
        self._pool = {r: _History(recompute_growth, max_levels, growth, scored=False) for r in self.resources}
        self._cap = {r: (self.max_resources or {}).get(r, math.inf) for r in self.resources}
        self._wall = 0.0

    def _new_state(self, resource: str) -> AdaptiveState:
        own = _History(self.recompute_growth, self.max_levels, self.growth, scored=True, cap=self._cap[resource])
        return AdaptiveState(own, self._pool[resource], self._cold[resource], self.growth, self)

    def observe(self, category: Any, resources: Mapping[str, float]) -> None:
        """Learn from a successful task (see ``Predictor.observe``); a
        ``wall_time`` entry (seconds) weighs it when ``time_weighted``."""
        wall = 0.0
        if self.time_weighted and hasattr(resources, "get") and resources.get("wall_time") is not None:
            try:
                wall = float(resources["wall_time"])
            except (TypeError, ValueError):
                raise ValueError(f"observed wall_time must be a number, got {resources['wall_time']!r}") from None
            if not (wall > 0 and math.isfinite(wall)):
                wall = 0.0
        self._wall = wall
        super().observe(category, resources)
