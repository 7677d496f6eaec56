"""Baseline predictors: the simple policies every smarter one must beat.

- ``whole-machine``: every task gets the whole machine (``max_resources``).
- ``max-seen``: the largest usage seen so far in the category.
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

from predictors.base import KNOWN_RESOURCES, Predictor, _check_value

_NONE: dict[str, float] = {}
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
