"""Baseline predictors: the simple policies every smarter one must beat.

- ``whole-machine``: every task gets the whole machine (``max_resources``).
- ``max-seen``: the largest usage seen so far in the category.
- ``hedged-max-seen``: max-seen, or a lower usage seen where its failures cost less than the slack
  (or, behind a costly retry, the whole machine).
- ``quantile``: a percentile of the category's history.
- ``oracle``: the task's own usage (replay only: the physical limit, AE = 1).

All of them start a category they have never seen at the cold-start allocation
(:data:`predictors.base.KNOWN_RESOURCES`: 1 core, 1000 MB memory, 1000 MB disk,
3600 s) and double an allocation that was exceeded, unless the policy says otherwise.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from typing import Any

from predictors.base import KNOWN_RESOURCES, Predictor, _check_value, check_retry_cost

_NONE: dict[str, float] = {}
from predictors.gaps import gap_step
from predictors.registry import register


class _MaxSeenState:
    """Cold default until the first observation, then the largest usage seen; doubles on failure."""

    __slots__ = ("cold", "max_seen")

    def __init__(self, cold: float) -> None:
        self.cold = cold
        self.max_seen: float | None = None

    def first(self, features: Mapping[str, float]) -> float:
        return self.cold if self.max_seen is None else self.max_seen

    def retry(self, previous: float, features: Mapping[str, float]) -> float:
        return previous * 2 if previous > 0 else self.cold

    def observe(self, value: float, obs: Any) -> None:
        if self.max_seen is None or value > self.max_seen:
            self.max_seen = value

    def describe(self) -> dict[str, Any]:
        return {"allocation": self.first(_NONE)}


@register("max-seen")
class MaxSeen(Predictor):
    """First allocation = the largest usage seen so far in the category (the
    cold-start default for its first task); an exceeded allocation doubles.

    Parameters: see :class:`predictors.base.Predictor`.
    """

    def __init__(self, *, resources: Iterable[str] = ("memory",),
                 max_resources: Mapping[str, float] | None = None, seed: int = 0) -> None:
        super().__init__(resources=resources, max_resources=max_resources, seed=seed)

    def _new_state(self, resource: str) -> _MaxSeenState:
        return _MaxSeenState(KNOWN_RESOURCES[resource])


#: Width of the value bins of ``hedged-max-seen`` (values within 1 % are one candidate).
HEDGE_BIN = math.log(1.01)


class _HedgedMaxSeenState(_MaxSeenState):
    """max-seen whose first allocation may be a lower value seen, when that is
    cheaper in expectation (see :class:`HedgedMaxSeen`)."""

    __slots__ = ("retry_cost", "machine", "bins", "n", "wall", "features", "varied", "choice", "due")

    def __init__(self, cold: float, retry_cost: float, machine: float | None) -> None:
        super().__init__(cold)
        self.retry_cost = retry_cost
        self.machine = machine     # the whole machine, when known
        # per 1 % bin of usage: [tasks, their summed wall time (s), the largest usage in it]
        self.bins: dict[int, list[float]] = {}
        self.n = 0
        self.wall = 0.0
        self.features: tuple[tuple[str, float], ...] | None = None   # the first task's
        self.varied = False    # have the tasks' features differed?
        self.choice: float | None = None   # another first allocation (lower, or the machine), or None for the maximum
        self.due = 0           # tasks at which the choice is recomputed next

    def first(self, features: Mapping[str, float]) -> float:
        top = self.max_seen
        if top is None:
            return self.cold
        return top if self.choice is None else self.choice

    def _recompute(self) -> None:
        top, n = self.max_seen, self.n
        self.choice = None
        if top is None or n < 1 or self.varied:
            return
        rc, total = self.retry_cost, self.wall
        mean = total / n
        # expected charge x (n + 1) of the next task, the n seen plus one "record" task at the mean
        # wall time above them all: allocating a, a task above a fails there (its wall time plus
        # the retry cost, at a) and then runs at the maximum, where the record fails again (the
        # retry cost at the maximum) and runs at the next step (twice the maximum, at most the
        # machine), each option alike
        cost = top * (total + mean)
        above_wall, above = 0.0, 0.0
        keys = sorted(self.bins, reverse=True)
        for hi, lo in zip(keys, keys[1:]):
            count, wall, _ = self.bins[hi]
            above += count
            above_wall += wall
            a = self.bins[lo][2]
            c = a * (total + mean) + (above + 1) * a * rc + top * (above_wall + mean)
            if c < cost:
                self.choice, cost = a, c
        whole = self.machine
        if whole is not None and whole > top and rc >= mean:
            # the machine (a failure costs two runs or more; class docstring): no task fails, not even the record.
            # rc 0 never qualifies: observed wall times are > 0 (Predictor.observe), so mean > 0
            if whole * (total + mean) < cost + top * rc + min(2 * top, whole) * mean:
                self.choice = whole

    def retry(self, previous: float, features: Mapping[str, float]) -> float:
        top = self.max_seen
        if top is not None and previous < top:
            if not previous * 2 < top:
                return top
            # the usages above `previous` (bin maxima: within 1 % of the smallest)
            above, nearest = 0.0, math.inf
            for count, _, high in self.bins.values():
                if high > previous:
                    above += count
                    nearest = min(nearest, high)
            penalty = 1.0 + self.retry_cost * self.n / self.wall if self.retry_cost else 1.0
            return gap_step(previous, top, int(above), nearest, 2.0, penalty)
        return super().retry(previous, features)

    def observe(self, value: float, obs: Any) -> None:
        new_max = self.max_seen is None or value > self.max_seen
        super().observe(value, obs)
        feats = tuple(sorted(obs.features.items())) if obs.features else ()
        if self.features is None:
            self.features = feats
        elif feats != self.features and not self.varied:
            self.varied = True
            self.choice = None   # max-seen from now on (class docstring), not at the next recompute
        key = math.floor(math.log(value) / HEDGE_BIN) if value > 0 else -(2 ** 62)
        b = self.bins.get(key)
        if b is None:
            self.bins[key] = [1.0, obs.wall_time, value]
        else:
            b[0] += 1.0
            b[1] += obs.wall_time
            if value > b[2]:
                b[2] = value
        self.n += 1
        self.wall += obs.wall_time
        # every task below 100, then every 1 % more (bucketing's schedule), and at a new maximum
        if new_max or self.n >= self.due:
            self._recompute()
            self.due = self.n + max(1, self.n // 100)


@register("hedged-max-seen")
class HedgedMaxSeen(Predictor):
    """max-seen that does not bet a category on one outlier.

    The first allocation is whichever usage seen - the maximum or a lower one
    - has the lowest expected charge on the next task (allocation x wall time,
    each failed attempt also ``retry_cost`` s), with the tasks seen equally
    likely, each at its own wall time, plus one more above them all (the
    chance that the next of k exchangeable tasks exceeds all k is 1 / (k + 1),
    whatever the distribution).  A lower first allocation is retried at the
    maximum, or first at twice the failed allocation where few usages seen lie
    above it and that costs less in expectation (:func:`predictors.gaps.gap_step`:
    after a 50x outlier, a task that fails the bulk's allocation is as likely
    just above it as near the outlier; the choice's charge still counts the
    retry at the maximum); past the maximum an allocation doubles, as in
    max-seen.  Usages
    within 1 % of one another are one candidate; the choice is recomputed after
    every task below 100, then after every 1 % more tasks, and at every new
    maximum.  Where the tasks' features (if any) differ, it is max-seen: the
    spread may be theirs to explain (``regression``), not chance.

    **The whole machine, where a failure costs two runs.**  When the machine
    size is known (``max_resources``) and ``retry_cost`` is at least the
    category's mean wall time, the machine is a further option: no task fails
    there, not even the one above all seen, which at the maximum fails (its
    wall time plus the retry cost) and runs again at twice the maximum.  Early
    in a category, where that chance 1 / (k + 1) is high, this is Tovar's
    whole-machine start, taken only while it is the cheaper bet.  (With short
    tasks behind a 30 s retry cost, 10 synthetic kinds x 3 draws of 1,000
    tasks of 1 s: ``auto``, which starts young categories here, went from
    0.0147 to 0.0057 below the best reference on average, and gained on each
    of the 10 kinds; on ``bench_replay``'s 70 such draws it is at or above the
    best reference on 33 instead of 28, mean margin +0.077 instead of +0.068,
    worst -0.042 instead of -0.050, single draws moving either way by up to
    0.02; with the drawn wall times nothing changed.  With cheaper retries
    the option was worse: there the bet hinges on the 1 / (k + 1) alone, and
    in a replay the machine is derived from the trace's own largest usage, so
    a category whose maximum is close to it is likely to have seen its own
    largest tasks already; on many-categories draws it cost ``auto``
    0.003-0.004.)

    Where a category's tasks are alike this is max-seen (a lower value is
    chosen only when the slack it saves exceeds what its failures cost), and
    after a 50x outlier among a category's first tasks it does not give the
    outlier's size to every task that follows, as max-seen does: so it is
    ``auto``'s young-category default.

    Parameters (keyword-only): ``resources``, ``max_resources`` (the machine
    size, see above), ``seed`` (see :class:`predictors.base.Predictor`);
    ``retry_cost`` (0.0): seconds each failed attempt costs on top of its
    wall time.
    """

    def __init__(self, *, resources: Iterable[str] = ("memory",), max_resources: Mapping[str, float] | None = None,
                 seed: int = 0, retry_cost: float = 0.0) -> None:
        super().__init__(resources=resources, max_resources=max_resources, seed=seed)
        self.retry_cost = retry_cost

    def _setup(self) -> None:
        super()._setup()
        self._retry_cost = check_retry_cost(self.retry_cost)

    def _new_state(self, resource: str) -> _HedgedMaxSeenState:
        return _HedgedMaxSeenState(KNOWN_RESOURCES[resource], self._retry_cost, self._caps.get(resource))


class _WholeMachineState(_MaxSeenState):
    """The machine size when known; otherwise the larger of the cold default and
    the largest usage seen (then doubling on failure)."""

    __slots__ = ("machine",)

    def __init__(self, cold: float, machine: float | None) -> None:
        super().__init__(cold)
        self.machine = machine

    def first(self, features: Mapping[str, float]) -> float:
        if self.machine is not None:
            return self.machine
        return max(self.cold, self.max_seen or 0.0)


@register("whole-machine")
class WholeMachine(Predictor):
    """Every task gets ``max_resources`` of each resource (the whole machine), so it
    never fails; without ``max_resources`` it falls back to the larger of the
    cold-start default and the largest usage seen, doubling on failure.

    Parameters: see :class:`predictors.base.Predictor`.
    """

    def __init__(self, *, resources: Iterable[str] = ("memory",),
                 max_resources: Mapping[str, float] | None = None, seed: int = 0) -> None:
        super().__init__(resources=resources, max_resources=max_resources, seed=seed)

    def _new_state(self, resource: str) -> _WholeMachineState:
        return _WholeMachineState(KNOWN_RESOURCES[resource], self._caps.get(resource))


class _QuantileState:
    __slots__ = ("cold", "q", "sorted")

    def __init__(self, cold: float, q: float) -> None:
        self.cold = cold
        self.q = q
        self.sorted: list[float] = []

    def first(self, features: Mapping[str, float]) -> float:
        n = len(self.sorted)
        if n == 0:
            return self.cold
        return self.sorted[max(0, math.ceil(self.q * n) - 1)]

    def retry(self, previous: float, features: Mapping[str, float]) -> float:
        return previous * 2 if previous > 0 else self.cold

    def observe(self, value: float, obs: Any) -> None:
        bisect.insort(self.sorted, value)

    def describe(self) -> dict[str, Any]:
        return {"allocation": self.first(_NONE)}


@register("quantile")
class Quantile(Predictor):
    """First allocation = the ``q`` quantile of the category's history (the smallest
    usage seen that at least a fraction ``q`` of the history does not exceed); the
    cold-start default until the first observation; an exceeded allocation doubles.

    q : quantile in (0, 1], default 0.95 (1.0 is max-seen).
    Other parameters: see :class:`predictors.base.Predictor`.
    """

    def __init__(self, *, q: float = 0.95, resources: Iterable[str] = ("memory",),
                 max_resources: Mapping[str, float] | None = None, seed: int = 0) -> None:
        super().__init__(resources=resources, max_resources=max_resources, seed=seed)
        self.q = q

    def _setup(self) -> None:
        super()._setup()
        q = self.q
        if not (isinstance(q, (int, float)) and not isinstance(q, bool) and 0 < q <= 1):
            raise ValueError(f"quantile q must be a number in (0, 1], got {q!r}")

    def _new_state(self, resource: str) -> _QuantileState:
        return _QuantileState(KNOWN_RESOURCES[resource], float(self.q))


class _OracleState(_MaxSeenState):
    __slots__ = ("revealed",)

    def __init__(self, cold: float) -> None:
        super().__init__(cold)
        self.revealed: float | None = None

    def first(self, features: Mapping[str, float]) -> float:
        return self.revealed if self.revealed is not None else super().first(features)


@register("oracle")
class Oracle(Predictor):
    """Replay only: allocates exactly what the task will use, the physical limit
    (AE = 1, no retries). :func:`predictors.replay` tells it the usage through
    :meth:`reveal` before each task; without a revealed usage it behaves like
    ``max-seen``.

    Parameters: see :class:`predictors.base.Predictor`.
    """

    def __init__(self, *, resources: Iterable[str] = ("memory",),
                 max_resources: Mapping[str, float] | None = None, seed: int = 0) -> None:
        super().__init__(resources=resources, max_resources=max_resources, seed=seed)

    def _new_state(self, resource: str) -> _OracleState:
        return _OracleState(KNOWN_RESOURCES[resource])

    def reveal(self, category: Any, usage: Mapping[str, float]) -> None:
        """Make the next first allocation of ``category`` equal ``usage`` (a mapping
        resource -> value, in the resource's unit)."""
        self._check()
        states = self._category(category)
        for r in self._resources:
            if r in usage:
                states[r].revealed = _check_value(r, usage[r], what="revealed usage")
