"""The predictor contract shared by every policy.

A predictor keeps, per category and per resource, the history of what tasks used
and answers "which allocation should the next attempt get".  Units: memory and
disk in MB, cores as a float, wall_time in seconds.

Subclasses implement three hooks on a per-(category, resource) *state* object
that they create in :meth:`Predictor._new_state`:

``state.first() -> float``            allocation for a first attempt
``state.retry(previous) -> float``    allocation after an attempt with ``previous`` was exceeded
``state.observe(value) -> None``      learn from a successful task's usage

The base class does everything that must be the same for all of them: input
validation, capping by ``max_resources``, and the multi-resource
retry rule (each exceeded resource strictly grows, the others never shrink).
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

#: Resources a predictor can label, with the cold-start allocation of each
#: (the published defaults: 1 core, 1000 MB memory, 1000 MB disk; wall time 1 h).
KNOWN_RESOURCES: dict[str, float] = {"cores": 1.0, "memory": 1000.0, "disk": 1000.0, "wall_time": 3600.0}


class AllocationLimitReached(Exception):
    """A retry cannot get more of an exceeded resource: the previous allocation
    was already at ``max_resources``. Carries ``resource`` and ``limit``."""

    def __init__(self, message: str, *, resource: str, limit: float) -> None:
        super().__init__(message)
        self.resource = resource
        self.limit = limit


class Predictor:
    """Base class of every predictor (see the module docstring).

    Parameters common to all predictors (subclasses list them in their own
    ``__init__`` and pass them on):

    resources : which resources to label, a subset of :data:`KNOWN_RESOURCES`.
    max_resources : mapping resource -> the largest allocation any worker can
        offer (the machine size); every allocation is capped to it. ``None``: no cap.
    seed : seed of the predictor's random generator (probabilistic policies).
    """

    name = "predictor"

    def __init__(self, resources: Iterable[str] = ("memory",),
                 max_resources: Mapping[str, float] | None = None, seed: int = 0) -> None:
        self.resources = tuple(resources)
        self.max_resources = dict(max_resources) if max_resources is not None else None
        self.seed = seed
        for r in self.resources:
            _check_resource(r)
        for r, v in (self.max_resources or {}).items():
            _check_resource(r)
            _check_value(r, v, what="max_resources")
        self._rng = np.random.default_rng(seed)
        self._states: dict[Any, dict[str, Any]] = {}

    # ---- scikit-learn style parameters -------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        return [p.name for p in inspect.signature(cls.__init__).parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters of this predictor, as a dict."""
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ---- hooks for subclasses -----------------------------------------------------------
    def _new_state(self, resource: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- public contract ---------------------------------------------------------------
    def predict(self, category: Any, previous: Mapping[str, float] | None = None,
                exceeded: Iterable[str] | None = None) -> dict[str, float]:
        """Allocation for the next attempt of a task of ``category``.

        ``previous``: the allocation of the attempt that just failed (None for a
        first attempt); ``exceeded``: the resources it exceeded. For every
        exceeded resource the answer is strictly larger than ``previous``; no
        other resource is lower than in ``previous``. Raises
        :class:`AllocationLimitReached` when an exceeded resource is already at
        ``max_resources``, and ``ValueError`` on bad input.
        """
        exceeded = set(exceeded or ())
        for r in exceeded:
            _check_resource(r)
            if r not in self.resources:
                raise ValueError(f"exceeded resource {r!r} is not one this predictor labels {self.resources}")
        if exceeded and previous is None:
            raise ValueError("exceeded resources given without the previous allocation")
        previous = dict(previous or {})
        for r, v in previous.items():
            _check_resource(r)
            _check_value(r, v, what="previous allocation")
        states = self._category(category)
        alloc: dict[str, float] = {}
        for r in self.resources:
            state = states[r]
            prev = previous.get(r)
            cap = (self.max_resources or {}).get(r, math.inf)
            if r in exceeded:
                if prev is None:
                    raise ValueError(f"resource {r!r} exceeded but absent from the previous allocation")
                if prev >= cap:
                    raise AllocationLimitReached(
                        f"{r} exceeded its allocation of {prev:g}, which is already the largest "
                        f"available ({cap:g})", resource=r, limit=cap)
                value = float(state.retry(prev))
                if not value > prev:
                    value = prev * 2 if prev > 0 else KNOWN_RESOURCES[r]
            else:
                value = float(state.first()) if prev is None else prev
            alloc[r] = min(value, cap)
        return alloc

    def observe(self, category: Any, resources: Mapping[str, float]) -> None:
        """Learn from a task of ``category`` that succeeded using ``resources``
        (a mapping with at least the labelled resources; other keys are ignored)."""
        states = self._category(category)
        values = {}
        for r in self.resources:
            if r not in resources:
                raise ValueError(f"observed resources lack {r!r}, which this predictor labels "
                                 f"(got {sorted(resources)})")
            values[r] = _check_value(r, resources[r], what="observed usage")
        for r, v in values.items():
            states[r].observe(v)

    def _category(self, category: Any) -> dict[str, Any]:
        try:
            return self._states[category]
        except KeyError:
            states = self._states[category] = {r: self._new_state(r) for r in self.resources}
            return states
        except TypeError:
            raise ValueError(f"category must be hashable, got {type(category).__name__}") from None

    def categories(self) -> list[Any]:
        """Categories seen so far."""
        return list(self._states)

    def describe(self, category: Any) -> dict[str, Any]:
        """Human-readable state of one category per resource (e.g. current
        buckets or first allocation), for stats tables and plots."""
        return {r: getattr(s, "describe", lambda: {})() for r, s in self._category(category).items()}


def _check_resource(resource: str) -> None:
    if resource not in KNOWN_RESOURCES:
        raise ValueError(f"unknown resource {resource!r}; known resources: {', '.join(KNOWN_RESOURCES)}")


def _check_value(resource: str, value: Any, *, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} for {resource!r} must be a number, got {value!r}") from None
    if math.isnan(value) or value < 0 or math.isinf(value):
        raise ValueError(f"{what} for {resource!r} must be a finite number >= 0, got {value!r}")
    return value
