"""``adaptive``: lfm's own predictor - cost-optimal retry ladders, chosen online.

What it does differently from the published bucketing policies, and why:

* **The real cost model, solved exactly.**  A replay (or a real run) charges
  every attempt its allocation times the task's wall time.  For a ladder of
  allocations a_1 < a_2 < ... (first attempt a_1, then the next rung after each
  failure) the expected charge of the next task is
  ``sum_j a_j * W(usage > a_{j-1})``, ``W`` the weight of history above a rung.
  ``bucketing.optimal_ladder`` finds the ladder minimising it by dynamic
  programming (a convex-hull-trick pass, O(levels)) over the history's
  distinct values, capped at ``max_levels`` weighted quantiles.  A deterministic ladder is
  optimal here: drawing allocations at random cannot lower an expected cost
  below the best fixed ladder.
* **The next task may exceed everything seen.**  Whatever the distribution,
  the next of n exchangeable tasks is above all n with probability
  1 / (n + 1), and above the k-th largest with probability k / (n + 1), not
  the (k - 1) / n the history alone says.  The ladder's cost counts that: a
  point at ``growth`` x the maximum (at most the machine size) with 1 / n of
  the history's weight (``bucketing.optimal_binned``'s ``tail_ratio``).  So a
  young category, or one whose maximum is close to the machine size, starts
  above its maximum when a failure there would cost more than the slack
  saves, and rungs fitted to a small sample's gaps are trusted less.
* **A task that fails a rung is most likely just above it.**  Exchangeability
  again: a new task falls into each gap between consecutive values seen
  alike, whatever the gap's width.  So after a failure at a rung with only a
  few values above it (say the category's one 50x outlier), the task lies in
  the gap just above the rung with probability 1 / (values above + 1), and a
  ladder fitted to the history alone, whose next rung is the outlier, would
  give a task 1 % above the bulk 50x its use.  The retry is then ``growth``
  x the failed rung instead of the next rung when that costs less in
  expectation (:func:`predictors.gaps.gap_step`: the task placed log-uniformly
  within that gap; each extra failure also costs ``retry_cost``), and the
  next rung only once values seen lie within that step or enough of them lie
  above.  On 200 random workloads of 1-40 categories (lognormal, bimodal,
  growth, phase change, 3 % outliers) it raised ``adaptive`` by 0.009-0.015
  AE on average (105 better, 24 worse) and ``auto`` by 0.003-0.009 (76
  better, 24 worse, the worst -0.011); allocations on the public traces
  moved on one row only (bwa-small as one group, +0.0019).
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
  categories pooled (a prior).  A retry up that pooled ladder steps at most
  :data:`POOLED_JUMP` (16) x the failed allocation: its gaps are gaps between
  *other* categories' usages, which say little about where a new one lies
  above a rung it exceeded, and its top rung may be the whole machine (the
  tail past another category's outlier).  On random workloads of 10-40
  categories a first task at 25 GB that failed the pooled rung at 4.4 GB was
  retried at the 2 TB machine, 80 times its use.  With the cap, auto's two
  worst losses to the best reference there that came from it fell from 0.11
  to 0.03-0.05 AE (200 such workloads: mean +0.002, 4 fewer below the best
  reference; allocations on the public traces unchanged).  A cap of 4 cost
  0.005 on the synthetic many-categories member, whose pooled gaps are real.
  With no history at all, a geometric probe from a small first allocation
  (``cold_start``, by default 1/16 of the published default, e.g. 62.5 MB)
  doubling after each failure, which costs at most about 4x the usage
  instead of the fixed 1000 MB that wastes most of a small task's
  allocation.  With a ``retry_cost`` every failed probe also costs that
  many seconds, which for short tasks is many times their run (1 s tasks, 30 s
  per failure: a doubling probe up to 1000 MB costs 29x the task), so the probe
  is shorter: from 1/64 of the machine size (``max_resources``), times 4 after
  each failure, at most three failures on the way to the machine
  (:data:`COSTLY_PROBE`).  The whole machine for that first task, tried
  before, charged a long first task 75 times what it used (a 274-task trace:
  AE 0.477, with the short probe 0.616); on 40 random workloads with a 30 s
  retry cost the short probe gained 0.012 AE on average (34 better, 5 worse,
  worst -0.015), on the synthetic cases with a retry cost 0.001, and with 1 s
  tasks it lost 0.004.
* **Past the known range, learnt steps.**  Every time a task sets a new
  maximum, the ratio of its usage to the previous maximum is recorded (per
  category, and pooled for categories that have not set one yet).  A task
  that fails at the top rung is retried up a ladder of ratios x the maximum,
  the cost-optimal ladder over those ratios (the same dynamic programme)
  limited to its rungs below ``growth`` (2), then at ``growth``,
  ``growth``^2, ... x the maximum (the steps only add rungs below the
  doubling ladder: after them a retry goes back to 2x the maximum, not to
  twice the last step).  On a growing workload new maxima exceed the old by a few
  per cent, and doubling would pay for twice the maximum at every one of
  them; on a heavy-tailed one the ratios are large and the steps follow.

Ladders are recomputed on the schedule of ``bucketing.BucketingState``
(``recompute_growth``: every task below 100 observations, then every 1 % more).

Measured (AE_time with the reference replay semantics; "best reference" is the
best non-oracle row of ``../shared/anchors/cctools-replay.csv``; ``python -m
benchmarks replay``):

==============================  ==============  ===========  ===========
trace                           grouping        adaptive     best ref.
==============================  ==============  ===========  ===========
bioblast                        per category    0.8960       0.8933
bioblast                        one group       0.8418       0.8120
lobsterCMSsimulation            per category    0.8701       0.8584
lobsterCMSsimulation            one group       0.8522       0.8412
lobsterCMSsimulation[:4000]     per category    0.8923       0.8906
lobsterCMSsimulation[:4000]     one group       0.8811       0.8783
blast-medium-001                per category    0.8668       0.8564
blast-medium-001                one group       0.8717       0.8580
bwa-small-001                   per category    0.4138       0.1608
bwa-small-001                   one group       0.4118       0.1785
==============================  ==============  ===========  ===========

On synthetic workloads (3,000 tasks, one group) it is the best predictor for
normal, exponential, bimodal, trimodal and beta memory, and within 0.003 of
the best for uniform; on shuffled prefixes of lobsterCMSsimulation (a
stationary, nearly unimodal workload) it trails max-seen by up to 0.004.
Speed: lobsterCMSsimulation replays at ~50,000 tasks/s per category and
~67,000 as one group (tasks per CPU second).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from bucketing import BucketingState

from .base import KNOWN_RESOURCES, Observation, Predictor, check_resource, check_retry_cost
from .bucketed import next_step
from .ladders import EXPERTS, LadderHistory, history_views
from .registry import register

#: With a retry cost, the very first task's probe: (start as a fraction of the machine
#: size, factor after each failure).
COSTLY_PROBE = (1.0 / 64.0, 4.0)
#: The largest factor a retry up the pooled ladder (a category's first task) steps
#: over the failed allocation (module docstring).
POOLED_JUMP = 16.0


class AdaptiveState:
    """Per-(category, resource) state of :class:`AdaptivePredictor`."""

    __slots__ = ("own", "pool", "cold", "growth", "time_weighted", "probe")

    def __init__(self, own: LadderHistory, pool: LadderHistory, cold: float, growth: float, time_weighted: bool,
                 probe: float = 2.0) -> None:
        self.own = own
        self.pool = pool
        self.cold = cold
        self.growth = growth
        self.time_weighted = time_weighted
        self.probe = probe   # factor after a failed probe, while nothing at all is known

    def _ladder(self) -> list[float] | None:
        ladder = self.own.ladder()
        return ladder if ladder is not None else self.pool.ladder()

    def first(self, features: Mapping[str, float] | None = None) -> float:
        ladder = self._ladder()
        return self.cold if ladder is None else ladder[0]

    def retry(self, previous: float, features: Mapping[str, float] | None = None) -> float:
        ladder = self.own.ladder()
        pooled = ladder is None
        if pooled:
            ladder = self.pool.ladder()
        for rung in ladder or ():
            if rung > previous:
                if pooled:
                    return previous * POOLED_JUMP if previous > 0 and rung > previous * POOLED_JUMP else rung
                return self.own.into_gap(previous, rung)
        if ladder:
            for step in self.own.escalation(ladder[-1]):
                if step > previous:
                    return step
            if ladder[-1] > 0:
                return next_step(previous, ladder[-1], self.growth)
        return previous * self.probe if previous > 0 else self.cold

    def observe(self, value: float, obs: Observation) -> None:
        wall = obs.wall_time if self.time_weighted else 1.0
        ratio = self.own.add(value, wall)
        self.pool.add(value, wall)
        if ratio is not None:
            self.pool.learn_ratio(ratio, wall)

    def describe(self) -> dict[str, Any]:
        own = len(self.own) > 0
        return {"tasks": len(self.own), "buckets": self._ladder() or [self.cold],
                "expert": EXPERTS[self.own.leader()] if own else ("pooled" if len(self.pool) else "probe")}


class _SharedAdaptiveState(AdaptiveState):
    """An :class:`AdaptiveState` whose own history is shared with other
    predictors (``predictors.shared_histories``)."""

    __slots__ = ()

    def before_add(self, value: float, obs: Observation) -> None:
        """Score the ladders on the task before the shared history learns it."""
        self.own.score(value, obs.wall_time)


@register("adaptive")
class AdaptivePredictor(Predictor):
    """lfm's own predictor: cost-optimal retry ladders per category, the best
    one chosen online (see the module docstring).

    Parameters (keyword-only): ``resources``, ``max_resources``, ``seed`` (see
    ``Predictor``; this predictor draws no random numbers);
    ``cold_start`` (None): first allocation per resource when nothing at all is
    known - a mapping resource -> value, by default 1/16 of
    ``KNOWN_RESOURCES`` (1 core for cores), doubling after each failure; with a
    ``retry_cost`` > 0, 1/64 of the machine size (``max_resources``; else
    ``KNOWN_RESOURCES``), times 4 after each failure: each failed probe costs
    ``retry_cost`` s, which can be many times what a short task runs;
    ``growth`` (2.0): factor applied to a failed allocation past the ladder;
    ``time_weighted`` (True): use an observation's ``wall_time`` (seconds) for
    the time-weighted ladder and for scoring (False: every task counts 1 s);
    ``retry_cost`` (0.0): seconds each failed attempt costs on top of its wall
    time (dispatch and queue latency), charged at its allocation; ladders and
    scores minimise allocation x (wall time + retry_cost per failure);
    ``max_levels`` (96): candidate rungs for the dynamic programme;
    ``recompute_growth`` (0.01): ladder recompute schedule (0 = every task).
    """

    def __init__(self, *, resources: Iterable[str] = ("memory",), max_resources: Mapping[str, float] | None = None,
                 seed: int = 0, cold_start: Mapping[str, float] | None = None, growth: float = 2.0,
                 time_weighted: bool = True, retry_cost: float = 0.0, max_levels: int = 96,
                 recompute_growth: float = 0.01) -> None:
        super().__init__(resources=resources, max_resources=max_resources, seed=seed)
        self.cold_start = cold_start
        self.growth = growth
        self.time_weighted = time_weighted
        self.retry_cost = retry_cost
        self.max_levels = max_levels
        self.recompute_growth = recompute_growth

    def _setup(self) -> None:
        super()._setup()
        growth, levels, rg = self.growth, self.max_levels, self.recompute_growth
        if not isinstance(growth, (int, float)) or not growth > 1 or math.isinf(growth):
            raise ValueError(f"growth must be a number > 1, got {growth!r}")
        if not isinstance(levels, (int, np.integer)) or isinstance(levels, bool) or levels < 2:
            raise ValueError(f"max_levels must be an integer >= 2, got {levels!r}")
        if not isinstance(rg, (int, float)) or not 0 <= rg < 1:
            raise ValueError(f"recompute_growth must be a fraction in [0, 1), got {rg!r}")
        self._retry_cost = check_retry_cost(self.retry_cost)
        self._cold = cold_start_values(self.cold_start)
        self._pool = {r: LadderHistory(rg, levels, growth, scored=False, retry_cost=self._retry_cost)
                      for r in self._resources}
        # a history weighted by wall time, as the bucketing predictors' shared ones are
        self._shareable = bool(self.time_weighted)

    def _shared_views(self, resource: str) -> dict[str, tuple[str, dict[str, Any]]]:
        """The bucketings a state of ``resource`` reads, by name (``predictors.shared_histories``)."""
        return history_views(self.max_levels, self.growth, True, self._caps.get(resource, math.inf),
                             self._retry_cost)

    def _shared_state(self, resource: str, history: BucketingState, views: Mapping[str, str]) -> AdaptiveState:
        """A state whose own history is ``history``, which holds :meth:`_shared_views`
        under the names ``views`` gives on this predictor's schedule.  The
        caller calls the state's ``before_add``, then adds every observed value
        to ``history`` once, then passes it to the state's ``observe``."""
        return self._new_state(resource, history, views)

    def _new_state(self, resource: str, shared: BucketingState | None = None,
                   views: Mapping[str, str] | None = None) -> AdaptiveState:
        own = LadderHistory(self.recompute_growth, self.max_levels, self.growth, scored=True,
                            cap=self._caps.get(resource, math.inf), retry_cost=self._retry_cost, shared=shared,
                            views=views)
        own.prior = self._pool[resource]
        cold = self._cold[resource]
        probe = self.growth
        if self._retry_cost > 0:
            # a short probe: each failure costs retry_cost s, many times a short task's run
            probe = max(probe, COSTLY_PROBE[1])
            if resource not in (self.cold_start or {}):
                machine = self._caps.get(resource)
                cold = KNOWN_RESOURCES[resource] if machine is None else machine * COSTLY_PROBE[0]
        kind = AdaptiveState if shared is None else _SharedAdaptiveState
        return kind(own, self._pool[resource], cold, self.growth, bool(self.time_weighted), probe)


def cold_start_values(cold_start: Mapping[str, float] | None) -> dict[str, float]:
    """First allocation per resource with nothing known: 1/16 of
    ``KNOWN_RESOURCES`` (1 core), overridden by ``cold_start``."""
    cold = {r: (1.0 if r == "cores" else v / 16) for r, v in KNOWN_RESOURCES.items()}
    for r, v in (cold_start or {}).items():
        check_resource(r, "cold_start")
        if not isinstance(v, (int, float)) or not v > 0 or math.isinf(v):
            raise ValueError(f"cold_start[{r!r}] must be a number > 0, got {v!r}")
        cold[r] = float(v)
    return cold
