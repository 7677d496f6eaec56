"""How ``auto`` chooses, per category and resource, the candidate whose
allocations are given out (:class:`AutoState`), and why each rule is there.
The candidates and their cost are described in :mod:`predictors.auto`.

* **Counterfactual cost, exactly.**  After a task succeeds its usage is known,
  so what each candidate would have allocated to it, how many times it would
  have failed and what that would have cost is computed exactly: each failed
  attempt charged allocation x (wall time + ``retry_cost``), the successful one
  allocation x wall time (the replay's metric, so selecting on it optimises
  what is measured).  A probabilistic candidate is charged its expectation.
* **At the wall time a task of that usage is expected to run.**  The wall time
  in those charges is not the task's own but what the category's recent tasks
  say a task of its usage runs (:class:`predictors.walls.ExpectedWall`: log
  wall time on log usage, the task itself included, half-life
  ``wall_halflife`` tasks).  Which candidate fails on the one task that ran
  ten times the usual length is luck that says little about the next tasks,
  yet charged at its own wall time it outweighed a hundred tasks of evidence.
  (On 100 workloads of the held-out families never used before, seeds
  1040-1139: +0.0239 -> +0.0249 above the best reference, 9 -> 6 below it
  (rc 0), and +0.0238 -> +0.0252, 10 -> 6 (rc 30); over all 235 development
  workloads +0.0007 / +0.0006 on average, no set lower by more than 0.0011.)
* **Discounted, for non-stationary workloads.**  Costs fade with a half-life of
  ``halflife`` tasks of the category, so after a phase change (new modes,
  growth) the candidate that fits the new phase takes over within a few
  hundred tasks instead of being outvoted by the old phase forever.
* **A category's first task is not evidence about it.**  It measures the
  candidates' cold starts, which never matter to that category again, and one
  cold-start failure can outweigh dozens of later tasks: the category's own
  evidence starts at its second task (the first feeds the pool below).
* **Young categories follow the other categories of the same age.**  Each
  candidate's cost is pooled over all categories in age strata (a category's
  1st task, 2nd, 3rd-4th, 5th-8th, ... 65th and later), without the
  category's own tasks.  Until a category has ``prior_tasks`` tasks of own
  evidence its leader is the *default* of its age, unless the pooled tasks
  of that age show another candidate cheaper *beyond chance*: a one-sided
  paired test of the per-task cost differences at ``confidence`` standard
  errors.  Without the test, the cheapest pooled candidate early in a
  workload was noise (on the synthetic many-categories member, seeds 0-4: a
  bucketing mode's fixed 1000 MB start led 47 young categories and auto fell
  0.005-0.013 below max-seen).  The defaults:

  - a category's first task: adaptive's cold start (probing up from 1/16 of
    the published default: its failed attempts cost at most about the usage
    again, where a fixed 1000 MB start wastes up to 1000 MB / usage; the
    reference algorithms' own cold start is such a fixed start);
  - later: ``regression`` over ``hedged-max-seen``, i.e. max-seen (one or a
    few observations say little more than their maximum) unless a lower
    usage seen is cheaper in expectation, failures included, except where the
    category's tasks carry features that vary and a fit on them has cost
    less than that on the category's own tasks; then the fit answers
    (auto's regression candidate has ``min_tasks=3``: fitted on a category's
    first three tasks and compared on its fourth, it may answer its fifth).
    Where tasks carry no features the fit never answers.  Plain max-seen
    gave a category whose first or second task was a 50x outlier that size
    for every young task: on random workloads of 1-40 categories
    (lognormal, bimodal, growth, phase change, 3 % outliers) the hedge took
    auto from +0.0197 to +0.0317 above the best reference (seeds 0-79) and
    from +0.0184 to +0.0268 (80-199), the worst losses from -0.09 to -0.05;
    on the 93 synthetic cases (rc 0 and 30) from +0.0719 to +0.0728, 30
    below instead of 31.  (With max-seen as the default, a category of a
    Nextflow-like trace whose memory follows its inputs waited for the
    pooled evidence of its age, and auto trailed
    standalone ``regression`` on 2 of 10 such traces; now it is above it on
    all 10.  ``min_tasks`` 3 instead of regression's own 5 added 0.015-0.034
    on those 10, and 0.017 on average over 8 draws of a mix of 54 processes
    whose memory follows the input linearly, sub-linearly or not at all; it
    cost 0.003 on average where the feature is pure noise, and moved single
    categories of 1,000-3,000 tasks by -0.020 to +0.018, mean -0.0002, through what
    their first tasks happened to extrapolate to.)

* **No thrashing.**  Afterwards the leader changes only when another
  candidate's own discounted cost plus the pooled prior (``prior_tasks``
  pseudo-tasks at the pooled cost of the category's age) is lowest, and below
  the leader's by more than what ``switch_tasks`` typical tasks of the
  category use.  (The prior counts in that margin too: a category of a few
  tasks never gathers that much own evidence, and the other categories' tasks
  of its age are what tell it that its young default was the wrong choice;
  with its own costs alone, 40 categories of 8 tasks stayed with max-seen
  where the pooled tasks showed adaptive cheaper by a third.)  Near-ties keep
  the incumbent: between policies of equal merit, switching on noise follows
  whichever was lucky last, while a fixed amount of evidence, unlike a
  fraction of a growing sum, still lets a real change in the workload through
  within a few tasks.  (A
  paired significance test was tried for this step too: at 2 standard errors,
  tested after every task, it made false switches between equal policies
  (uniform memory); at 3-4 it was too slow on growth, below exhaustive by
  0.001-0.006.)
* **A candidate in its fixed cold start does not take the lead.**  Its own
  score there is the default's cost (how lucky the bucketing modes' fixed
  1000 MB start was says nothing about their buckets), so its score says
  nothing about what it would give out now: Tovar's modes give the whole
  machine until a category settles.  (On a Nextflow-like mix of 54 processes
  the pooled prior, where max-throughput had settled in other processes,
  made it lead a process of 2 GB tasks that kept setting new maxima; auto
  gave it the 256 GB machine for 4 tasks, and AE fell from 0.485 to 0.448.)
  Nor does it lead right after: like a young category, it needs
  ``prior_tasks`` tasks of its own evidence past its cold start first, as
  its score until then is mostly the stand-in.  (A bucketing mode just out of
  its first 10 tasks, giving less than the default, led after two lucky tasks
  and then failed; with 1 s tasks behind a 30 s retry cost, 10 synthetic
  kinds x 3 draws: 0.0057 -> 0.0052 below the best reference on average, and
  ``bench_replay``'s 70 such draws: 33 -> 35 at or above it; 30
  workloads of 5-40 small categories with 3 % outliers: +0.0300 -> +0.0320
  (rc 0) and +0.0297 -> +0.0317 (rc 30); 40 held-out-family workloads and the
  uniform, normal, beta, many-categories, pipeline and heavy-tail draws
  within 0.0002.)

* **A failed task is likely just above its allocation.**  Whichever candidate
  leads, a retry that would more than double the failed allocation goes to
  twice it first where :func:`predictors.gaps.gap_step` finds that cheaper in
  expectation (few of the category's usages above, none within the step): the
  reference bucketings' next bucket after the bulk may be a lone outlier.
  (Candidates are charged their own retries, without this rule.)  On 200 random
  workloads of 1-40 categories: +0.0014 / +0.0025 AE on average (seeds
  0-79 / 80-199), the synthetic suite and the public traces unchanged within
  0.0001.  Where in the gap the task lies comes from a smoothed density of
  the category's log usages (:func:`predictors.gaps.smoothed_share`; placed
  log-uniformly, a task that failed at the bulk's maximum went straight to an
  outlier up to 38x above it): held-out seeds 1140-1239 +0.0215 -> +0.0238
  (rc 0), +0.0217 -> +0.0239 (rc 30); elsewhere within 0.0005 (README).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bucketing import BucketingState

from .base import Observation
from .counterfactual import walk_cost
from .gaps import gap_step, smoothed_share
from .pooled import stratum
from .walls import ExpectedWall

if TYPE_CHECKING:
    from .auto import AutoPredictor


class AutoState:
    """Per-(category, resource) state: the candidates' states, their discounted
    counterfactual costs and the leader."""

    __slots__ = ("states", "scores", "leader", "tasks", "evidence", "oracle", "pool", "cap", "owner", "switches",
                 "mine", "_hooks", "_warms", "_hubs", "_before", "warm_tasks", "walls")

    def __init__(self, owner: "AutoPredictor", resource: str) -> None:
        self.owner = owner
        self.states, self._hubs, self._before = owner._sharing.states(resource)
        if not self._hubs:   # the category's usages, for the retry rule (see retry)
            self._hubs.append(BucketingState("quantized", n_buckets=1))
        # per candidate, bound once: (state, its expected_cost or None, its warm or None)
        self._hooks = [(st, getattr(st, "expected_cost", None), getattr(st, "warm", None)) for st in self.states]
        self._warms = [i for i, (_, _, warm) in enumerate(self._hooks) if warm is not None]   # with a cold start
        self.warm_tasks = [0] * len(self.states)   # tasks seen warm, for the candidates with a cold start
        self.scores = [0.0] * len(self.states)   # discounted own costs (from the second task on)
        self.leader = -1          # -1: not chosen yet
        self.tasks = 0
        self.evidence = 0         # tasks in the category's own evidence (all but its first)
        self.oracle = 0.0         # discounted used resource.time of those tasks
        self.pool = owner._pools[resource]    # one Pool per age stratum
        self.cap = owner._caps.get(resource, math.inf)
        self.switches = 0         # leader changes after the first choice
        # this category's share of each stratum's pool: [costs, oracle, the pool's clock then]
        self.mine: dict[int, list[Any]] = {}
        self.walls = None if owner._wall_decay is None else ExpectedWall(owner._wall_decay)

    def _pooled(self) -> list[float] | None:
        """Each candidate's cost per unit of used resource.time on the other
        categories' tasks of the age this category's next task has (1 / its
        pooled AE there), None when they have no such evidence yet."""
        s = stratum(self.tasks)
        pool = self.pool[s]
        mine = self.mine.get(s)
        if mine is None:
            return [c / pool.weight for c in pool.cost] if pool.weight > 0 else None
        f = pool.decay ** (pool.clock - mine[2])
        weight = pool.weight - mine[1] * f
        if not weight > 1e-9 * pool.weight:
            return None
        return [(c - m * f) / weight for c, m in zip(pool.cost, mine[0])]

    def _choose(self) -> None:
        owner = self.owner
        lead = self.leader
        if self.evidence < owner._min_evidence:
            s = stratum(self.tasks)
            best = owner._defaults[s]
            pooled = self._pooled()
            if pooled is not None:
                cheapest = min(range(len(pooled)), key=pooled.__getitem__)
                if cheapest != best and self.pool[s].better(cheapest, owner._z, owner._min_evidence):
                    best = cheapest
        else:
            scores, pooled = self.scores, self._pooled()
            per_task = self.oracle / owner._discounted_count(self.evidence)
            if pooled is None:
                totals = scores
            else:
                weight = owner._prior_tasks * per_task
                totals = [c + weight * g for c, g in zip(scores, pooled)]
            # a candidate in its fixed cold start is scored at the default's cost (see observe), not
            # at what it would give out now (Tovar's whole machine until the category settles): it
            # may not lead on that stand-in score, nor before prior_tasks tasks of its own past it
            need = owner._min_evidence
            cold = [i for i in self._warms if self.warm_tasks[i] < need]
            if cold:
                totals = list(totals)
                for i in cold:
                    totals[i] = math.inf
            best = min(range(len(totals)), key=totals.__getitem__)
            if best != lead and lead not in cold and not totals[lead] - totals[best] > owner._switch * per_task:
                best = lead
        if best != lead:
            if lead >= 0:
                self.switches += 1
            self.leader = best

    def first(self, features: Mapping[str, float]) -> float:
        if self.leader < 0:
            self._choose()
        return self.states[self.leader].first(features)

    def retry(self, previous: float, features: Mapping[str, float]) -> float:
        if self.leader < 0:
            self._choose()
        r = self.states[self.leader].retry(previous, features)
        if previous > 0 and r > 2 * previous:
            # whichever candidate leads, a task that failed is as likely just above the
            # failed allocation as in any other gap between the usages seen (gaps module)
            history = self._hubs[0]
            above, nearest = history.above(previous)
            rc = self.owner._retry_cost
            share = smoothed_share(previous, 2 * previous, nearest, *history.counts()) \
                if 2 * previous < nearest < math.inf else None
            return gap_step(previous, r, above, nearest, 2.0, 1.0 + (rc / history.mean_wall() if rc else 0.0),
                            share)
        return r

    def observe(self, value: float, obs: Observation) -> None:
        feats, wall = obs.features, obs.wall_time
        # the costs' wall time: what the category's recent tasks say a task of this usage runs (walls module)
        cw = wall if self.walls is None else self.walls.add(value, wall)
        cap, rc = self.cap, self.owner._retry_cost
        costs = []
        cold = None
        for i, (st, expected, warm) in enumerate(self._hooks):
            # counterfactual.counterfactual, inlined: this loop is most of auto's time
            c = None if expected is None else expected(value, cw, cap, rc)
            costs.append(walk_cost(st, value, feats, cw, cap, rc) if c is None else c)
            if warm is not None:
                if not warm():
                    cold = [i] if cold is None else cold + [i]
                else:
                    self.warm_tasks[i] += 1
        for hook in self._before:   # once all costs are known: the shared histories change here
            hook(value, obs)
        for hub in self._hubs:
            hub.add(value, wall)
        for st in self.states:
            st.observe(value, obs)
        used = max(value, 1e-9) * cw
        s = stratum(self.tasks)
        pool = self.pool[s]
        pool.add(costs, used)
        mine = self.mine.get(s)
        if mine is None:
            self.mine[s] = [costs, used, pool.clock]
        else:
            f = pool.decay ** (pool.clock - mine[2])
            mine[0] = [m * f + c for m, c in zip(mine[0], costs)]
            mine[1] = mine[1] * f + used
            mine[2] = pool.clock
        if self.tasks:
            d = self.owner._decay
            scores = self.scores
            own = costs
            if cold is not None:
                # a candidate in its fixed cold start (the bucketing modes' first tasks at the
                # default, Tovar's whole machine until steady state) is charged the default's
                # cost: how lucky its cold start was says nothing about its policy
                own = list(costs)
                base = costs[self.owner._defaults[-1]]
                for i in cold:
                    own[i] = base
            for i, c in enumerate(own):
                scores[i] = scores[i] * d + c
            self.oracle = self.oracle * d + used
            self.evidence += 1
        self.tasks += 1
        self._choose()

    def describe(self) -> dict[str, Any]:
        names = self.owner._names
        lead = self.leader if self.leader >= 0 else self.owner._defaults[0]
        out = {"tasks": float(self.tasks), "leader": float(lead), "switches": float(self.switches)}
        out.update({f"cost_{n}": float(s) for n, s in zip(names, self.scores)})
        inner = getattr(self.states[lead], "describe", lambda: {})()
        out.update({k: v for k, v in inner.items() if k not in out})
        return out


__all__ = ["AutoState"]
