"""One submitted call of an :class:`~lfm.executors.AutolabelExecutor`: its
record (:class:`Task`: future, attempts, how to run it), the ``options(...)``
view that submits with a category and declared resources, how a future is
resolved exactly once, and the check of declared resources (cores a float,
memory and disk MB, wall_time s)."""
from __future__ import annotations

import concurrent.futures as cf
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from lfm.checks import positive
from lfm.resources import LIMITABLE, UNITS

if TYPE_CHECKING:
    from lfm.executors.backend import Attempt
    from lfm.executors.executor import AutolabelExecutor


class Options(cf.Executor):
    """``AutolabelExecutor.options(...)``: submit/map with a category and declared resources."""

    def __init__(self, executor: "AutolabelExecutor", category: str | None,
                 resources: dict[str, float] | None, how: "How") -> None:
        self._executor = executor
        self._category = category
        self._resources = resources
        self._how = how

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        return self._executor._submit(fn, args, kwargs, self._category, self._resources, self._how)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Does nothing: shut down the executor this view came from."""


class How:
    """How to run a call, beside its category and declared resources (see
    :meth:`AutolabelExecutor.options`)."""

    __slots__ = ("features", "inputs", "outputs", "extra")

    def __init__(self, features: Any = None, inputs: list | None = None,
                 outputs: list | None = None, extra: dict | None = None) -> None:
        self.features = features
        self.inputs = inputs or []
        self.outputs = outputs or []
        self.extra = extra or {}


class Task:
    def __init__(self, task_id: int, category: str, fn: Callable[..., Any], args: tuple,
                 kwargs: dict, declared: dict[str, float], how: How) -> None:
        self.id = task_id
        self.how = how
        #: name -> float, filled at submission (see lfm.executors.features)
        self.features: dict[str, float] = {}
        self.category = category
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.declared = declared
        self.future: cf.Future = cf.Future()
        self.attempts: list[dict[str, Any]] = []
        self.current: "Attempt | None" = None
        self._started = False

    def start(self) -> bool:
        """Called by the backend when an attempt is about to run: False when the
        future was cancelled meanwhile (then the attempt must not run)."""
        if self._started:
            return not self.future.done()
        self._started = True
        return self.future.set_running_or_notify_cancel()


def resolve(task: Task, *, value: Any = None, error: BaseException | None = None) -> None:
    future = task.future
    if future.done():
        return
    try:
        if not task.start():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)
    except cf.InvalidStateError:
        pass


def amount(resource: str, value: float) -> str:
    """``"memory 800 MB"``, ``"cores 2"``: an amount in lfm's units, for messages."""
    unit = UNITS.get(resource, "")
    return f"{resource} {value:g}" + (f" {unit}" if unit and unit != resource else "")


#: Work Queue task options that ``options(extra=...)`` passes on (the local backend ignores them)
EXTRA_OPTIONS = ("gpus", "priority", "running_time_min")


def check_category(category: Any) -> str | None:
    """``options(category=...)`` (or a Parsl specification's ``category``): a
    non-empty string, or None for the executor's own choice; ValueError otherwise
    (a category is a name in stats, traces and Work Queue's categories)."""
    if category is not None and (not isinstance(category, str) or not category):
        raise ValueError(f"category must be a non-empty string (or None: the function's name), got {category!r}")
    return category


def check_extra(extra: Mapping[str, Any]) -> dict[str, int | float]:
    """``options(extra=...)`` validated: known :data:`EXTRA_OPTIONS` only (None
    values left out), each checked by :func:`extra_value`."""
    if not isinstance(extra, Mapping):
        raise ValueError(f"extra must be a mapping of Work Queue task options ({', '.join(EXTRA_OPTIONS)}), "
                         f"got {type(extra).__name__}")
    unknown = sorted(str(k) for k in extra if k not in EXTRA_OPTIONS)
    if unknown:
        raise ValueError(f"unknown extra task option {unknown[0]!r}; known: {', '.join(EXTRA_OPTIONS)}")
    return {k: extra_value(k, v) for k, v in extra.items() if v is not None}


def extra_value(key: str, value: Any) -> int | float:
    """A Work Queue task option checked as Work Queue means it: ``gpus`` a whole
    count >= 0, ``priority`` any finite number (higher runs first, negatives
    allowed), ``running_time_min`` seconds >= 0. ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{key} must be a number, got {value!r}")
    if key == "priority":
        return value
    if value < 0:
        raise ValueError(f"{key} must be >= 0, got {value!r}")
    if key == "gpus" and value != int(value):
        raise ValueError(f"gpus must be a whole number of GPUs (Work Queue labels a task with a "
                         f"count of devices), got {value!r}")
    return int(value) if key == "gpus" else value


def check_env(env: Any) -> dict[str, str]:
    """``env``: names -> values of the tasks' environment variables; numbers become
    their text (``{"OMP_NUM_THREADS": 1}``), anything else that is not text is refused."""
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise ValueError(f"env must be a mapping of variable names to values, got {type(env).__name__}")
    out = {}
    for name, value in env.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(name, str) or not name or not isinstance(value, str):
            raise ValueError(f"env must map variable names to strings, got {name!r}: {value!r}")
        out[name] = value
    return out


def check_declared(resources: Mapping[str, float]) -> dict[str, float]:
    """Declared resources validated: a mapping of known resource -> positive amount in lfm's units."""
    if not isinstance(resources, Mapping):
        raise ValueError(f"declared resources must be a mapping resource -> amount (e.g. {{'memory': 800}}, "
                         f"MB), got {type(resources).__name__}")
    out = {}
    for key, value in resources.items():
        if key not in LIMITABLE:
            raise ValueError(f"unknown resource {key!r} in declared resources; known: "
                             f"{', '.join(LIMITABLE)}")
        out[key] = positive(value, f"declared {key}", unit=UNITS.get(key, ""))
    return out
