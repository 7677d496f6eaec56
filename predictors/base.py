"""The predictor contract shared by every policy.

A predictor keeps, per category and per resource, the history of what tasks used
and answers "which allocation should the next attempt get".  Units: memory and
disk in MB, cores as a float, wall_time in seconds; features are name -> float
(``input_size`` in MB).

Subclasses implement three hooks on a per-(category, resource) *state* object
that they create in :meth:`Predictor._new_state`:

``state.first(features) -> float``            allocation for a first attempt
``state.retry(previous, features) -> float``  allocation after an attempt with ``previous`` was exceeded
``state.observe(value, obs) -> None``         learn from a successful task's usage ``value``;
                                              ``obs`` is the whole :class:`Observation`
                                              (every resource, wall time, features)

``features`` is the mapping given to ``predict`` (empty dict when none); feature-less
states ignore it.  The base class does everything that must be the same for all of
them: input validation, capping by ``max_resources``, and the multi-resource retry
rule (each exceeded resource strictly grows, the others never shrink).

Parameters follow scikit-learn's conventions: every constructor parameter is
keyword-only and stored verbatim as an attribute of the same name; validation and
derived set-up happen at first use (:meth:`Predictor._setup`, called by the first
``predict``/``observe``), so ``get_params``/``set_params``/:func:`clone` round-trip
exactly what the caller gave.
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

_NO_FEATURES: dict[str, float] = {}


class AllocationLimitReached(Exception):
    """A retry cannot get more of an exceeded resource: the previous allocation
    was already at ``max_resources``. Carries ``resource`` and ``limit``."""

    def __init__(self, message: str, *, resource: str, limit: float) -> None:
        super().__init__(message)
        self.resource = resource
        self.limit = limit


class Observation:
    """One successful task as the per-resource states see it.

    ``resources``: the observed mapping (every resource measured, in its unit);
    ``wall_time``: the task's wall time in s, 1.0 when missing, 0 or not a
    positive finite number (the replay convention); ``features``: what was known
    before the task ran (name -> float, empty when nothing).
    """

    __slots__ = ("resources", "wall_time", "features")

    def __init__(self, resources: Mapping[str, float], wall_time: float, features: Mapping[str, float]) -> None:
        self.resources = resources
        self.wall_time = wall_time
        self.features = features

    def __repr__(self) -> str:
        return f"Observation(wall_time={self.wall_time!r}, features={dict(self.features)!r})"


class Predictor:
    """Base class of every predictor (see the module docstring).

    Parameters common to all predictors (keyword-only; subclasses list them in
    their own ``__init__`` and pass them on):

    resources : which resources to label, a subset of :data:`KNOWN_RESOURCES`.
    max_resources : mapping resource -> the largest allocation any worker can
        offer (the machine size); every allocation is capped to it. ``None``: no cap.
    seed : seed of the predictor's random generator (probabilistic policies).
    """

    name = "predictor"

    def __init__(self, *, resources: Iterable[str] = ("memory",),
                 max_resources: Mapping[str, float] | None = None, seed: int = 0) -> None:
        self.resources = resources
        self.max_resources = max_resources
        self.seed = seed
        self._ready = False

    # ---- scikit-learn style parameters -------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        return [p.name for p in inspect.signature(cls.__init__).parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters of this predictor, as given (a dict)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> "Predictor":
        """Change constructor parameters (validated at the next use, like the
        constructor's). What was learnt is forgotten: the next ``predict`` or
        ``observe`` starts from a fresh state with the new parameters. Returns self."""
        names = self._param_names()
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown parameter(s) {', '.join(unknown)}; "
                             f"accepted parameters: {', '.join(names)}")
        for key, value in params.items():
            setattr(self, key, value)
        self._ready = False
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ---- set-up at first use ------------------------------------------------------------
    def _setup(self) -> None:
        """Validate the parameters and build the derived state (called by the
        first ``predict``/``observe`` and after ``set_params``). Subclasses
        extend it with their own checks and call ``super()._setup()`` first."""
        if isinstance(self.resources, str):
            raise ValueError(f"resources must be a collection of names, got the string {self.resources!r}")
        self._resources = check_resources(self.resources)
        caps = dict(self.max_resources) if self.max_resources is not None else {}
        for r, v in caps.items():
            check_resource(r, "max_resources")
            caps[r] = _check_value(r, v, what="max_resources")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        self._caps = caps
        self._rng = np.random.default_rng(self.seed)
        self._states: dict[Any, dict[str, Any]] = {}
        self._ready = True

    def _check(self) -> None:
        if not self._ready:
            self._setup()

    # ---- hooks for subclasses -----------------------------------------------------------
    def _new_state(self, resource: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- public contract ---------------------------------------------------------------
    def predict(self, category: Any, previous: Mapping[str, float] | None = None,
                exceeded: Iterable[str] | None = None, *,
                features: Mapping[str, float] | None = None) -> dict[str, float]:
        """Allocation for the next attempt of a task of ``category``.

        ``previous``: the allocation of the attempt that just failed (None for a
        first attempt); ``exceeded``: the resources it exceeded. For every
        exceeded resource the answer is strictly larger than ``previous``; no
        other resource is lower than in ``previous``. ``features``: what is
        known about the task before it runs (name -> finite float, ``input_size``
        in MB); predictors that do not use features ignore it. ``exceeded``
        may also be one resource name. Raises
        :class:`AllocationLimitReached` when an exceeded resource is already at
        ``max_resources``, and ``ValueError`` on bad input.
        """
        if not self._ready:
            self._setup()
        feats = _NO_FEATURES if features is None else _check_features(features)
        states = self._category(category)
        caps = self._caps
        if previous is None and not exceeded:  # the common case: a first attempt
            return {r: min(float(states[r].first(feats)), caps.get(r, math.inf)) for r in self._resources}
        # one resource name alone, not its letters
        exceeded = {exceeded} if isinstance(exceeded, str) else set(exceeded or ())
        for r in exceeded:
            check_resource(r, "exceeded")
            if r not in self._resources:
                raise ValueError(f"exceeded resource {r!r} is not one this predictor labels {self._resources}")
        if exceeded and previous is None:
            raise ValueError("exceeded resources given without the previous allocation")
        previous = dict(previous or {})
        for r, v in previous.items():
            check_resource(r, "previous")
            _check_value(r, v, what="previous allocation")
        alloc: dict[str, float] = {}
        for r in self._resources:
            state = states[r]
            prev = previous.get(r)
            cap = caps.get(r, math.inf)
            if r in exceeded:
                if prev is None:
                    raise ValueError(f"resource {r!r} exceeded but absent from the previous allocation")
                if prev >= cap:
                    raise AllocationLimitReached(
                        f"{r} exceeded its allocation of {prev:g}, which is already the largest "
                        f"available ({cap:g})", resource=r, limit=cap)
                value = float(state.retry(prev, feats))
                if not value > prev:
                    value = prev * 2 if prev > 0 else KNOWN_RESOURCES[r]
            else:
                value = float(state.first(feats)) if prev is None else prev
            alloc[r] = min(value, cap)
        return alloc

    def observe(self, category: Any, resources: Mapping[str, float], *,
                features: Mapping[str, float] | None = None) -> None:
        """Learn from a task of ``category`` that succeeded using ``resources``
        (a mapping with at least the labelled resources, optionally
        ``wall_time`` in s; other keys are ignored). ``features``: what was
        known before the task ran, as given to ``predict``."""
        if not self._ready:
            self._setup()
        states = self._category(category)
        values = {}
        for r in self._resources:
            if r not in resources:
                raise ValueError(f"observed resources lack {r!r}, which this predictor labels "
                                 f"(got {sorted(resources)})")
            values[r] = _check_value(r, resources[r], what="observed usage")
        obs = Observation(resources, effective_wall(resources.get("wall_time")),
                          _NO_FEATURES if features is None else _check_features(features))
        for r, v in values.items():
            states[r].observe(v, obs)

    def _category(self, category: Any) -> dict[str, Any]:
        try:
            return self._states[category]
        except KeyError:
            states = self._states[category] = {r: self._new_state(r) for r in self._resources}
            return states
        except TypeError:
            raise ValueError(f"category must be hashable, got {type(category).__name__}") from None

    def categories(self) -> list[Any]:
        """Categories seen so far."""
        return list(self._states) if self._ready else []

    def describe(self, category: Any) -> dict[str, Any]:
        """Human-readable state of one category per resource (e.g. current
        buckets or first allocation), for stats tables and plots. Changes
        nothing: a category never seen is described as a fresh one would be."""
        if not self._ready:
            self._setup()
        try:
            states = self._states.get(category)
        except TypeError:
            raise ValueError(f"category must be hashable, got {type(category).__name__}") from None
        if states is None:
            states = {r: self._new_state(r) for r in self._resources}
        return {r: getattr(s, "describe", lambda: {})() for r, s in states.items()}


def clone(predictor: Predictor) -> Predictor:
    """A new, unfitted predictor of the same class with the same parameters
    (scikit-learn's ``clone``): nothing learnt is carried over."""
    if not isinstance(predictor, Predictor):
        raise TypeError(f"clone needs a predictors.base.Predictor, got {type(predictor).__name__}")
    return type(predictor)(**predictor.get_params())


def effective_wall(wall: Any) -> float:
    """A task's wall time for weighting (s): 1.0 when missing, 0, negative or not
    finite (the replay convention); ``ValueError`` when not a number."""
    if wall is None:
        return 1.0
    try:
        wall = float(wall)
    except (TypeError, ValueError):
        raise ValueError(f"observed wall_time must be a number of seconds, got {wall!r}") from None
    return wall if wall > 0 and wall != math.inf else 1.0


def _check_features(features: Mapping[str, float]) -> Mapping[str, float]:
    if not isinstance(features, Mapping):
        raise ValueError(f"features must be a mapping name -> number, got {type(features).__name__}")
    for name, value in features.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not math.isfinite(value):
            raise ValueError(f"features must be finite numbers (name -> float, input_size in MB), "
                             f"got {name}={value!r}")
    return features


def check_resource(resource: Any, what: str = "") -> str:
    """``resource`` if it is one a predictor labels (:data:`KNOWN_RESOURCES`),
    else a ValueError naming ``what`` was given and listing the known ones."""
    if resource not in KNOWN_RESOURCES:
        raise ValueError(f"{what + ': ' if what else ''}unknown resource {resource!r}; "
                         f"known resources: {', '.join(KNOWN_RESOURCES)}")
    return resource


def check_resources(resources: Any, what: str = "resources") -> tuple[str, ...]:
    """One or more resource names (a collection, or one name alone), each
    checked by :func:`check_resource`; ``what``: the argument, for the errors."""
    if isinstance(resources, str):
        resources = (resources,)
    try:
        names = tuple(resources)
    except TypeError:
        raise ValueError(f"{what} must be resource names, e.g. ('cores', 'memory'), got {resources!r}") from None
    if not names:
        raise ValueError(f"{what} must name at least one resource; known resources: {', '.join(KNOWN_RESOURCES)}")
    for r in names:
        check_resource(r, what)
    return names


def check_retry_cost(value: Any) -> float:
    """``retry_cost`` validated: seconds >= 0 charged per failed attempt."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < math.inf:
        raise ValueError(f"retry_cost must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _check_value(resource: str, value: Any, *, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} for {resource!r} must be a number, got {value!r}") from None
    if math.isnan(value) or value < 0 or math.isinf(value):
        raise ValueError(f"{what} for {resource!r} must be a finite number >= 0, got {value!r}")
    return value
