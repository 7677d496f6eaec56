"""``auto``: per category, the policy that would have cost least on its own history.

Every category (and resource) runs all candidate policies side by side, in
shadow: lfm's ``adaptive``, ``max-seen``, the feature-aware ``regression``,
the bucketing modes (``greedy``, ``exhaustive`` and their deterministic
variants) and Tovar's ``min-waste``/``max-throughput``, and with a
``retry_cost`` also Tovar's ``tovar-max``.  Only the leader's allocations are
given out; all candidates learn every task.  (``tovar-max`` keeps the whole
machine until a category settles.  Where a failed attempt costs many times a
task's wall time and the workload keeps setting new maxima, nothing else comes
close: on synthetic ``growth`` with 1 s tasks and a 30 s retry cost, seeds 0-4,
auto went from 0.29-0.42 below the best reference to 0.006-0.048 below it by
adding it.  Without a retry cost it is never needed, and as one more
near-duplicate of max-seen it cost 0.0005-0.002 of selection noise on
stationary workloads.)

How the leader is chosen, and why each rule is there (counterfactual costs at
expected wall times, discounting, the pooled prior of young categories,
hysteresis, cold starts, retries into the gap above a failed allocation):
:mod:`predictors.leader`.

Cost: each task is evaluated by every candidate (a handful of allocations
each; a probabilistic bucketing's expectation in one pass over its buckets)
and learnt by every candidate.  The four bucketing candidates and adaptive
read one history (``predictors.shared_histories``), recomputed together on the
1 % schedule (the greedy ones' standalone schedule is 0.4 %), each distinct
bucketing once (adaptive's deterministic greedy ladder is the greedy-det
candidate's buckets): their allocations are exactly those of each on its own
with that schedule.  With the four bucketing candidates sharing, auto replayed
lobsterCMSsimulation per category 11 % faster than with a history each; with
adaptive sharing too, another 11 % (median of 5 alternating runs, 13,900 ->
15,500 tasks per CPU second).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from .base import Predictor, check_retry_cost
from .leader import AutoState
from .pooled import STRATA, Pool
from .registry import available, create, register
from .shared_histories import SharedHistories

#: Default candidates (the first leads where ``adaptive`` and ``max-seen`` are not candidates).
CANDIDATES = ("adaptive", "max-seen", "regression", "greedy-det", "exhaustive-det", "greedy", "exhaustive",
              "min-waste", "max-throughput")
#: Added to the default candidates when ``retry_cost`` > 0 (module docstring).
RETRY_COST_CANDIDATES = ("tovar-max",)


@register("auto")
class AutoPredictor(Predictor):
    """The default predictor: per category, the candidate policy with the lowest
    discounted counterfactual cost on that category's own history, with an
    age-stratified pooled prior and hysteresis (:mod:`predictors.leader`).

    Parameters (keyword-only): ``resources``, ``max_resources``, ``seed`` (see
    ``Predictor``); ``candidates`` (None = :data:`CANDIDATES`, plus
    :data:`RETRY_COST_CANDIDATES` when ``retry_cost`` > 0): registered
    names of the policies to choose among; ``retry_cost`` (0.0): seconds each
    failed attempt costs on top of its wall time (dispatch, queueing), given
    to the candidates that take it and charged in every counterfactual cost;
    ``halflife`` (200): tasks of a category after which a past cost counts
    half; ``prior_tasks`` (5): tasks of own evidence before a category leaves
    the pooled choice, and the weight, in tasks, of the pooled prior
    afterwards; ``confidence`` (2.0): standard errors by which the pooled
    tasks must show a candidate cheaper than a young category's default;
    ``switch_tasks`` (2.0): a challenger takes over only when its own
    discounted cost plus the prior is below the leader's by more than this
    many times the category's mean used resource.time per task;
    ``wall_halflife`` (20): tasks after which a past task counts half in the
    expected wall time the counterfactual costs are charged at
    (:mod:`predictors.walls`), 0 to charge every task at its own wall time.
    """

    def __init__(self, *, resources: Iterable[str] = ("memory",), max_resources: Mapping[str, float] | None = None,
                 seed: int = 0, candidates: Iterable[str] | None = None, retry_cost: float = 0.0,
                 halflife: float = 200.0, prior_tasks: float = 5.0, confidence: float = 2.0,
                 switch_tasks: float = 2.0, wall_halflife: float = 20.0) -> None:
        super().__init__(resources=resources, max_resources=max_resources, seed=seed)
        self.candidates = candidates
        self.retry_cost = retry_cost
        self.halflife = halflife
        self.prior_tasks = prior_tasks
        self.confidence = confidence
        self.switch_tasks = switch_tasks
        self.wall_halflife = wall_halflife

    def _setup(self) -> None:
        super()._setup()
        self._retry_cost = check_retry_cost(self.retry_cost)
        if isinstance(self.candidates, str):
            raise ValueError(f"candidates must be a collection of names, got the string {self.candidates!r}")
        names = tuple(self.candidates) if self.candidates is not None else \
            CANDIDATES + (RETRY_COST_CANDIDATES if self._retry_cost > 0 else ())
        known = available()
        bad = [n for n in names if n not in known or n in ("auto", "oracle")]
        if bad or not names:
            raise ValueError(f"candidates: {bad[0] if bad else 'none given'!r} cannot be a candidate; "
                             f"known predictors: {', '.join(n for n in known if n not in ('auto', 'oracle'))}")
        for key, low in (("halflife", 0.0), ("prior_tasks", -1e-300), ("confidence", -1e-300),
                         ("switch_tasks", -1e-300), ("wall_halflife", -1e-300)):
            v = getattr(self, key)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > low or math.isinf(v):
                raise ValueError(f"{key} must be a finite number {'> 0' if low == 0 else '>= 0'}, got {v!r}")
        self._names = names
        self._candidates = []
        for i, name in enumerate(names):
            params: dict[str, Any] = {"resources": self._resources, "max_resources": self.max_resources,
                                      "seed": int(self.seed) + i}
            if name == "regression":
                params["fallback"] = "hedged-max-seen"   # the young default (predictors.leader)
                params["min_tasks"] = 3           # young categories (predictors.leader)
            if name in ("greedy", "greedy-det"):
                params["recompute_growth"] = 0.01  # the other bucketings' schedule: half the time, same answers
            p = create(name, **params)
            if "retry_cost" in p.get_params():   # the candidates that optimise for it
                p.set_params(retry_cost=self._retry_cost)
            p._setup()
            self._candidates.append(p)
        self._sharing = SharedHistories(self._candidates, names)
        self._decay = 0.5 ** (1.0 / float(self.halflife))
        self._z = float(self.confidence)
        self._prior_tasks = float(self.prior_tasks)
        self._min_evidence = max(1.0, self._prior_tasks)   # the own costs need one task
        self._switch = float(self.switch_tasks)
        self._wall_decay = 0.5 ** (1.0 / float(self.wall_halflife)) if self.wall_halflife > 0 else None
        # the default of each age: adaptive's probing cold start, then regression over max-seen
        cold = names.index("adaptive") if "adaptive" in names else 0
        warm = next((names.index(n) for n in ("regression", "max-seen") if n in names), cold)
        self._defaults = [cold] + [warm] * (STRATA - 1)
        self._pools = {r: [Pool(len(names), self._decay, self._defaults[s]) for s in range(STRATA)]
                       for r in self._resources}

    def _discounted_count(self, n: int) -> float:
        d = self._decay
        return (1 - d ** n) / (1 - d)

    def _new_state(self, resource: str) -> AutoState:
        return AutoState(self, resource)

    def leaders(self) -> dict[Any, dict[str, str]]:
        """Per category seen, per resource: the name of the policy that answers now:
        the leading candidate's, or where the leader is ``regression`` and its fit
        does not answer (no features that vary, or the fit has not yet cost less),
        its fallback's (``hedged-max-seen`` inside auto)."""
        def name(s: AutoState) -> str:
            lead = max(s.leader, 0)
            answering = getattr(s.states[lead], "answering", None)
            return (answering() if answering is not None else None) or self._names[lead]
        return {c: {r: name(s) for r, s in states.items()}
                for c, states in (self._states.items() if self._ready else ())}

    def switches(self) -> dict[Any, dict[str, int]]:
        """Per category seen, per resource: how often its leader changed."""
        return {c: {r: s.switches for r, s in states.items()}
                for c, states in (self._states.items() if self._ready else ())}


__all__ = ["AutoPredictor", "CANDIDATES", "RETRY_COST_CANDIDATES"]
