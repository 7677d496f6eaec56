"""``run_call`` (the engine) and ``@monitored`` (the engine plus sinks)."""
from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping

from lfm.checks import positive
from lfm.monitor import isolated
from lfm.monitor.disk import check_workdir
from lfm.monitor.limits import check_enforceable, validate_limits
from lfm.resources import CallKilled, ResourceExhaustion, Resources

# not typing.TYPE_CHECKING: importing typing costs each Work Queue task ~3 ms
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _label(fn: Callable) -> str:
    fn = getattr(fn, "__lfm_unwrapped__", fn)
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def run_call(fn: Callable, args: tuple = (), kwargs: Mapping[str, Any] | None = None, *,
             limits: Mapping[str, float] | None = None, isolate: bool | str = True,
             callback: Callable[[dict], Any] | None = None, interval: float = 1.0,
             keep_snapshots: bool = False, include_root: bool | None = None,
             workdir: str | os.PathLike | None = None) -> tuple[Any, Resources]:
    """Run ``fn(*args, **kwargs)`` and measure it; returns ``(result, Resources)``.

    ``isolate=True`` (default) runs it in its own process (see
    :mod:`lfm.monitor.isolated` for what each resource means), forked from lfm's
    fork server; ``isolate="fork"`` forks that process straight from this one,
    which saves starting the fork server's interpreter: for a small, fresh,
    single-threaded process that makes one or a few calls (as the Work Queue
    runner does; this process becomes a child subreaper and its memory is
    shared with the call's process); ``False`` runs it here (see
    :mod:`lfm.monitor.inline`). ``limits`` maps resource -> maximum
    (MB, s, cores; see :mod:`lfm.monitor.limits`). ``callback`` receives a
    snapshot dict every ``interval`` seconds (``time`` s since the start,
    ``memory`` MB resident, ``memory_peak`` MB, ``virtual_memory`` MB,
    ``cpu_time`` s, ``cores``, ``processes``, ..., ``final`` False) and a final
    one holding the call's resources with ``final`` True; ``keep_snapshots``
    keeps them all in ``Resources.snapshots``.

    ``include_root=False`` (isolated modes only) measures only the processes
    the call starts, as ``run_command`` measures a command: memory is the peak
    of the descendants' tree (without the call's own interpreter), cpu_time
    their CPU seconds; wall_time and everything else are unchanged, and limits
    apply to these figures. For a call that only runs a command (such as a
    Parsl bash app's wrapper). ``None`` (default) takes the function's
    ``lfm_include_root`` attribute, else True; the attribute travels with the
    function, so every executor path (local, Work Queue) honours it.

    ``disk`` (MB) is the peak space occupied in the call's own scratch area:
    isolated calls get a fresh scratch directory as ``TMPDIR``, removed after
    the call; ``workdir`` (an existing directory) is measured instead, whole,
    with the scratch directory made inside it (see
    :mod:`lfm.monitor.isolated`). Inline, ``disk`` is measured only with a
    ``workdir`` (the call runs in the caller's process, whose ``TMPDIR`` lfm
    does not change).

    Raises ``ResourceExhaustion`` (``.resources``, ``.exceeded``, ``.limits``),
    ``CallKilled`` (``.signal``, ``.exit_code``, ``.resources``),
    ``SerializationError`` (naming what could not be sent), ``ValueError`` for bad
    limits, or the call's own exception with its original type, the remote
    traceback as ``__cause__`` and the measured resources as ``lfm_resources``.
    A limit the mode cannot enforce is refused with ValueError, never ignored:
    inline (``isolate=False``), ``cores``, and ``disk`` without a ``workdir``.
    Thread-safe.
    """
    kwargs = dict(kwargs) if kwargs else {}
    limits = validate_limits(limits) if limits else {}
    if not callable(fn):
        raise TypeError(f"run_call needs a callable, got {type(fn).__name__}")
    if interval != 1.0:
        interval = positive(interval, "interval", unit="seconds between snapshots")
    if isolate not in (True, False, "fork"):
        raise ValueError(f"isolate must be True, False or 'fork', got {isolate!r}")
    if include_root is None:
        include_root = bool(getattr(fn, "lfm_include_root", True))
    if not include_root and not isolate:
        raise ValueError("include_root=False needs an isolated call (isolate=True or 'fork')")
    workdir = check_workdir(workdir)
    check_enforceable(limits, isolate=isolate, workdir=workdir)
    label = _label(fn)
    if isolate:
        return isolated.execute({"fn": fn, "args": tuple(args), "kwargs": kwargs}, label=label,
                                limits=limits, include_root=include_root, callback=callback, interval=interval,
                                keep_snapshots=keep_snapshots, direct=isolate == "fork",
                                workdir=workdir)
    from lfm.monitor import inline  # here: the Work Queue runner only forks
    return inline.execute(getattr(fn, "__lfm_unwrapped__", fn), tuple(args), kwargs,
                          label=label, limits=limits, callback=callback, interval=interval,
                          keep_snapshots=keep_snapshots, workdir=workdir)


def monitored(limits: Mapping[str, float] | Callable | None = None,
              callback: Callable[[dict], Any] | None = None, interval: float = 1.0,
              return_resources: bool = True, category: str | None = None,
              record: Any = None, feed: Any = None, isolate: bool | str = True,
              keep_snapshots: bool = False, workdir: str | os.PathLike | None = None) -> Any:
    """Decorator: every call of the function is run by :func:`run_call` and measured.

    ``@monitored`` (bare) and ``@monitored()`` are the same decorator with
    the defaults.

    The decorated function returns ``(result, Resources)``, or just the result
    with ``return_resources=False``. ``category`` (default: the function's name)
    names the kind of task in traces and predictors. ``record`` (a path or a
    :class:`lfm.trace.Trace`) gets one row per call — status ``ok``,
    ``exhausted`` or ``error``, the limits as the allocation (``alloc_*``), and
    the features ``function`` (qualified name), ``error`` and ``exceeded``
    (comma-separated). ``feed`` (anything with ``observe(category, resources)``,
    e.g. a predictor) is fed the resources of every successful call. Other
    parameters are those of :func:`run_call`. Limits are validated here, at
    decoration time (unknown names, bad values, and limits the mode cannot
    enforce are refused with ValueError).
    """
    if callable(limits) and not isinstance(limits, Mapping):
        # bare @monitored: the function itself came as the first argument
        return monitored()(limits)
    limits = validate_limits(limits)
    workdir = check_workdir(workdir)
    check_enforceable(limits, isolate=isolate, workdir=workdir)
    if feed is not None and not callable(getattr(feed, "observe", None)):
        raise TypeError(f"feed must have an observe(category, resources) method, "
                        f"got {type(feed).__name__}")
    trace = _open_trace(record) if record is not None else None

    def decorate(fn: Callable) -> Callable:
        name = category or getattr(fn, "__name__", None) or "call"

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                result, res = run_call(_sendable(wrapper, fn), args, kwargs, limits=limits,
                                       isolate=isolate,
                                       callback=callback, interval=interval,
                                       keep_snapshots=keep_snapshots, workdir=workdir)
            except ResourceExhaustion as exc:
                _record(trace, name, exc.resources, "exhausted", limits, fn,
                        error=str(exc), exceeded=",".join(exc.exceeded))
                raise
            except BaseException as exc:
                res = getattr(exc, "resources", None) if isinstance(exc, CallKilled) else \
                    getattr(exc, "lfm_resources", None)
                _record(trace, name, res, "error", limits, fn,
                        error=f"{type(exc).__name__}: {exc}")
                raise
            _record(trace, name, res, "ok", limits, fn)
            if feed is not None:
                feed.observe(name, res)
            return (result, res) if return_resources else result

        wrapper.__lfm_unwrapped__ = fn  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _sendable(wrapper: Callable, fn: Callable) -> Callable:
    """What to send to the call process: the wrapper when it travels by
    reference (a module attribute: the call process imports it and unwraps it),
    else the bare function, so the wrapper's sinks and callback don't travel."""
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    target: Any = module
    if module is not None and module.__name__ != "__main__":
        for part in getattr(fn, "__qualname__", "<locals>").split("."):
            target = getattr(target, part, None)
        if target is wrapper:
            return wrapper
    return fn


def _open_trace(record: Any) -> Any:
    if hasattr(record, "append"):
        return record
    if isinstance(record, (str, os.PathLike)):
        from lfm.trace import Trace  # lazy: keeps pandas out of the call processes
        return Trace(record)
    raise TypeError(f"record must be a path or an lfm.trace.Trace, got {type(record).__name__}")


def _record(trace: Any, name: str, res: Resources | None, status: str,
            limits: Mapping[str, float], fn: Callable, **features: str) -> None:
    if trace is None:
        return
    from lfm.trace import make_row
    row = make_row(name, dict(res or {}), status, alloc=dict(limits) or None,
                   function=f"{getattr(fn, '__module__', '')}.{_label(fn)}", **features)
    trace.append(row)
