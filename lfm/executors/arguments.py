"""``AutolabelExecutor``'s constructor arguments, checked before anything starts
and turned into its parts: the backend, the predictor and the trace. The Parsl
``AutolabelExecutor`` checks its arguments with the same functions."""
from __future__ import annotations

import numbers
from typing import Any

from lfm.checks import writable_later
from lfm.executors.backend import Backend

#: The backends known by name (or give a backend object).
BACKENDS = ("local", "workqueue")


def make_backend(backend: Any, options: dict[str, Any]) -> Backend:
    """``backend=`` and ``**backend_options``: a new backend of that name (not started yet),
    or the backend object given (checked to have the Backend methods)."""
    if isinstance(backend, str):
        if backend == "local":
            from lfm.executors.local import LocalBackend
            return LocalBackend(**options)
        if backend == "workqueue":
            from lfm.executors.workqueue import WorkQueueBackend
            return WorkQueueBackend(**options)
        raise ValueError(f"unknown backend {backend!r}; known backends: {', '.join(BACKENDS)}, "
                         "or a backend object")
    missing = [m for m in ("start", "submit", "cancel", "shutdown", "max_resources")
               if not callable(getattr(backend, m, None))]
    if missing:
        raise TypeError(f"backend {backend!r} lacks method(s) {', '.join(missing)} of "
                        "lfm.executors.backend.Backend")
    if options:
        raise TypeError(f"backend options {sorted(options)} given with a backend object; "
                        "configure the object instead")
    return backend


def check_max_retries(max_retries: Any) -> int:
    """``max_retries=`` validated: a whole number >= 0."""
    if isinstance(max_retries, bool) or not isinstance(max_retries, numbers.Integral) or max_retries < 0:
        raise ValueError(f"max_retries must be a whole number >= 0, got {max_retries!r}")
    return int(max_retries)


def check_resources(resources: Any) -> tuple[str, ...]:
    """``resources=`` validated: one or more of the resources a predictor labels."""
    from predictors import check_resources as check   # here: the local runner need not import predictors
    return check(resources)


def check_predictor(predictor: Any) -> Any:
    """``predictor=`` checked before anything starts: a registered name (else a
    ValueError listing them) or a predictor object, returned as given."""
    if isinstance(predictor, str):
        from predictors import check_name
        check_name(predictor)
    return predictor


def make_predictor(predictor: Any, resources: tuple[str, ...], max_resources: dict[str, float]) -> Any:
    """``predictor=``: the registered predictor of that name for ``resources``, capped
    at ``max_resources`` (the largest worker), or the predictor object given."""
    if isinstance(predictor, str):
        from predictors import create
        caps = {r: v for r, v in max_resources.items() if r in resources} or None
        return create(predictor, resources=resources, max_resources=caps)
    missing = [m for m in ("predict", "observe", "describe") if not callable(getattr(predictor, m, None))]
    if missing or not hasattr(predictor, "resources"):
        raise TypeError(f"predictor must be a registered name or a predictors.base.Predictor; "
                        f"{predictor!r} lacks {', '.join(missing) or 'resources'}")
    return predictor


def make_trace(trace: Any) -> Any:
    """``trace=``: None, an object with ``append(row)`` as given, or a
    :class:`lfm.trace.Trace` at that path (its directory must exist)."""
    if trace is None or callable(getattr(trace, "append", None)):
        return trace
    import os
    from lfm.trace import Trace
    if not isinstance(trace, (str, os.PathLike)):
        raise TypeError(f"trace must be None, a path or an object with append(row), got {type(trace).__name__}")
    writable_later(trace, "trace")   # refused now, not row by row once calls have run
    return Trace(trace)


__all__ = ["BACKENDS", "check_max_retries", "check_predictor", "check_resources", "make_backend", "make_predictor",
           "make_trace"]
