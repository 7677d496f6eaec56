"""``auto``: per category, the policy that would have cost least on its own history.

Every category (and resource) runs all candidate policies side by side, in
shadow: the feature-aware ``regression``, lfm's ``adaptive``, the bucketing
modes (``greedy``, ``exhaustive`` and their deterministic variants),
``max-seen`` and Tovar's ``min-waste``/``max-throughput``.  Only the leader's
allocations are given out; all candidates learn every task.

Choosing the leader, and why:

* **Counterfactual cost, exactly.**  After a task succeeds its usage is known,
  so what each candidate would have allocated to it, how many times it would
  have failed and what that would have cost is computed exactly: each failed
  attempt charged allocation x (wall time + ``retry_cost``), the successful one
  allocation x wall time (the replay's metric, so selecting on it optimises
  what is measured).  A probabilistic candidate's draws are real draws.
* **Discounted, for non-stationary workloads.**  Costs fade with a half-life of
  ``halflife`` tasks of the category, so after a phase change (new modes,
  growth) the candidate that fits the new phase takes over within a few
  hundred tasks instead of being outvoted by the old phase forever.
* **No thrashing.**  The leader changes only when another candidate's
  discounted cost is below the leader's by more than what ``switch_tasks`` (2)
  typical tasks of the category use (plus an optional fraction ``margin``).
  Near-ties keep the incumbent: between policies of equal merit, switching on
  noise costs (it follows whichever was lucky last), and a fixed amount of
  evidence, unlike a fraction of a growing sum, still lets a real change in
  the workload through within a few tasks.  (On blast-medium-001 a 0.5 %
  margin alone switched twice between adaptive and max-seen and ended below
  both, 0.855 vs 0.861.)
* **A pooled prior.**  Each candidate's cost relative to the oracle (allocated
  over used resource.time, i.e. 1/AE) is also pooled over all categories
  (sums of costs over sums of used resource.time, so big tasks weigh as in AE).  A
  category's choice adds ``prior_tasks`` pseudo-tasks at the pooled ratio to
  its own costs, so a young category (or a workload of many categories with
  few tasks each) starts with the policy that works on the rest of the
  workload, and its own evidence takes over as it accumulates.  The
  switching threshold grows with the prior by the same factor
  ((tasks + prior_tasks) / tasks) as the totals it compares, so a young
  category leaves the pooled choice only on evidence of its own (on 40
  processes of 15 tasks each, no features: 0.374 without that scaling, 0.399
  with it; the best single policy, exhaustive-det, 0.400).  Before any
  task at all the first candidate (``adaptive``, whose cold start itself
  starts from the ladder of all categories pooled) leads.

Cost: each task is evaluated by every candidate (a handful of allocations
each; a probabilistic bucketing's expectation in one pass over its buckets)
and learnt by every candidate; bucket recomputations follow each candidate's
own schedule (the greedy candidates use the 1 % schedule of the other
bucketings instead of their standalone 0.4 %).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from .adaptive import check_retry_cost
from .base import Observation, Predictor
from .regression import counterfactual
from .registry import available, create, register

#: Default candidates, in order of preference on ties (the first leads a category nothing is known about).
CANDIDATES = ("adaptive", "regression", "greedy-det", "exhaustive-det", "greedy", "exhaustive", "max-seen",
              "min-waste", "max-throughput")


class _Pool:
    """Per-resource, across categories: each candidate's discounted cost over the
    discounted oracle cost (used resource.time), i.e. 1 / its pooled AE."""

    __slots__ = ("ratio", "weight", "decay")

    def __init__(self, k: int, decay: float) -> None:
        self.ratio = [0.0] * k
        self.weight = 0.0
        self.decay = decay

    def add(self, costs: list[float], oracle: float) -> None:
        d = self.decay
        self.weight = self.weight * d + oracle
        r = self.ratio
        for i, c in enumerate(costs):
            r[i] = r[i] * d + c

    def means(self) -> list[float] | None:
        if self.weight <= 0:
            return None
        return [x / self.weight for x in self.ratio]


class AutoState:
    """Per-(category, resource) state: the candidates' states, their discounted
    counterfactual costs and the leader."""

    __slots__ = ("states", "scores", "leader", "tasks", "oracle", "pool", "cap", "owner", "switches")

    def __init__(self, owner: "AutoPredictor", resource: str) -> None:
        self.owner = owner
        self.states = [p._new_state(resource) for p in owner._candidates]
        k = len(self.states)
        self.scores = [0.0] * k
        self.leader = -1          # -1: choose from the pooled prior at the next first()
        self.tasks = 0
        self.oracle = 0.0         # discounted sum of used resource.time
        self.pool = owner._pools[resource]
        self.cap = owner._caps.get(resource, math.inf)
        self.switches = 0         # leader changes after the first choice

    def _choose(self) -> int:
        """The candidate with the lowest own + prior cost, with hysteresis."""
        pooled = self.pool.means()
        prior = self.owner._prior_tasks
        count = self.owner._discounted_count(self.tasks)
        per_task = self.oracle / count if self.tasks else 0.0
        threshold = self.owner._switch * per_task
        if pooled is None:
            total = self.scores
        elif self.tasks == 0:
            total = pooled
        else:
            total = [s + prior * per_task * g for s, g in zip(self.scores, pooled)]
            # the prior scales every total by about (count + prior) / count: so does the
            # threshold, which stays "switch_tasks tasks of the category's own evidence"
            threshold *= (count + prior) / count
        best = min(range(len(total)), key=total.__getitem__)
        lead = self.leader
        if lead < 0 or total[lead] - total[best] > total[lead] * self.owner._margin + threshold:
            return best
        return lead

    def first(self, features: Mapping[str, float]) -> float:
        if self.leader < 0:
            self.leader = self._choose()
        return self.states[self.leader].first(features)

    def retry(self, previous: float, features: Mapping[str, float]) -> float:
        if self.leader < 0:
            self.leader = self._choose()
        return self.states[self.leader].retry(previous, features)

    def observe(self, value: float, obs: Observation) -> None:
        feats, wall = obs.features, obs.wall_time
        cap, rc = self.cap, self.owner._retry_cost
        d = self.owner._decay
        costs = []
        scores = self.scores
        for i, st in enumerate(self.states):
            c = counterfactual(st, value, feats, wall, cap, rc)
            costs.append(c)
            scores[i] = scores[i] * d + c
            st.observe(value, obs)
        used = max(value, 1e-9) * wall
        self.oracle = self.oracle * d + used
        self.tasks += 1
        self.pool.add(costs, used)
        lead = self._choose()
        if lead != self.leader and self.leader >= 0:
            self.switches += 1
        self.leader = lead

    def describe(self) -> dict[str, Any]:
        names = self.owner._names
        lead = self.leader if self.leader >= 0 else 0
        out = {"tasks": float(self.tasks), "leader": float(lead), "switches": float(self.switches)}
        out.update({f"cost_{n}": float(s) for n, s in zip(names, self.scores)})
        inner = getattr(self.states[lead], "describe", lambda: {})()
        out.update({k: v for k, v in inner.items() if k not in out})
        return out


@register("auto")
class AutoPredictor(Predictor):
    """The default predictor: per category, the candidate policy with the lowest
    discounted counterfactual cost on that category's own history, with a
    pooled prior and hysteresis (module docstring).

    Parameters (keyword-only): ``resources``, ``max_resources``, ``seed`` (see
    ``Predictor``); ``candidates`` (None = :data:`CANDIDATES`): registered
    names of the policies to choose among, the first one leading a category
    nothing is known about; ``retry_cost`` (0.0): seconds each failed attempt
    costs on top of its wall time (dispatch, queueing), given to the candidates
    that take it and charged in every counterfactual cost; ``halflife`` (200):
    tasks of a category after which a past cost counts half; a challenger
    takes over only when its discounted cost is below the leader's by more than
    ``margin`` (0.0) times the leader's plus ``switch_tasks`` (2.0) times the
    category's mean used resource.time per task (what two typical tasks use);
    ``prior_tasks`` (5): weight, in tasks, of the pooled prior in a
    category's choice.
    """

    def __init__(self, *, resources: Iterable[str] = ("memory",), max_resources: Mapping[str, float] | None = None,
                 seed: int = 0, candidates: Iterable[str] | None = None, retry_cost: float = 0.0,
                 halflife: float = 200.0, margin: float = 0.0, switch_tasks: float = 2.0,
                 prior_tasks: float = 5.0) -> None:
        super().__init__(resources=resources, max_resources=max_resources, seed=seed)
        self.candidates = candidates
        self.retry_cost = retry_cost
        self.halflife = halflife
        self.margin = margin
        self.switch_tasks = switch_tasks
        self.prior_tasks = prior_tasks

    def _setup(self) -> None:
        super()._setup()
        names = tuple(CANDIDATES if self.candidates is None else self.candidates)
        if isinstance(self.candidates, str):
            raise ValueError(f"candidates must be a collection of names, got the string {self.candidates!r}")
        known = available()
        bad = [n for n in names if n not in known or n in ("auto", "oracle")]
        if bad or not names:
            raise ValueError(f"candidates: {bad[0] if bad else 'none given'!r} cannot be a candidate; "
                             f"known predictors: {', '.join(n for n in known if n not in ('auto', 'oracle'))}")
        for key, low in (("halflife", 0.0), ("prior_tasks", -1e-300), ("switch_tasks", -1e-300)):
            v = getattr(self, key)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > low or math.isinf(v):
                raise ValueError(f"{key} must be a finite number {'> 0' if low == 0 else '>= 0'}, got {v!r}")
        if not isinstance(self.margin, (int, float)) or not 0 <= self.margin < 1:
            raise ValueError(f"margin must be a fraction in [0, 1), got {self.margin!r}")
        self._retry_cost = check_retry_cost(self.retry_cost)
        self._names = names
        self._candidates = []
        for i, name in enumerate(names):
            params: dict[str, Any] = {"resources": self._resources, "max_resources": self.max_resources,
                                      "seed": int(self.seed) + i}
            if name in ("adaptive", "regression"):
                params["retry_cost"] = self._retry_cost
            if name == "regression":
                params["fallback"] = "max-seen"   # the other candidates cover the feature-less policies
            if name in ("greedy", "greedy-det"):
                params["recompute_growth"] = 0.01  # the other bucketings' schedule: half the time, same answers
            p = create(name, **params)
            p._setup()
            self._candidates.append(p)
        self._decay = 0.5 ** (1.0 / float(self.halflife))
        self._margin = float(self.margin)
        self._switch = float(self.switch_tasks)
        self._prior_tasks = float(self.prior_tasks)
        self._pools = {r: _Pool(len(names), self._decay) for r in self._resources}

    def _discounted_count(self, n: int) -> float:
        d = self._decay
        return (1 - d ** n) / (1 - d)

    def _new_state(self, resource: str) -> AutoState:
        return AutoState(self, resource)

    def leaders(self) -> dict[Any, dict[str, str]]:
        """Per category seen, per resource: the name of the candidate leading now."""
        return {c: {r: self._names[max(s.leader, 0)] for r, s in states.items()}
                for c, states in (self._states.items() if self._ready else ())}

    def switches(self) -> dict[Any, dict[str, int]]:
        """Per category seen, per resource: how often its leader changed."""
        return {c: {r: s.switches for r, s in states.items()}
                for c, states in (self._states.items() if self._ready else ())}


__all__ = ["AutoPredictor", "CANDIDATES"]
