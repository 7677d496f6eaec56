"""What lfm's two Parsl executors share: the app wrapper that makes an app's
exception the call's own, categories, the trace sink, and chaining lfm's
future into the one Parsl is given so that it always resolves."""
from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any

from parsl.app.errors import RemoteExceptionWrapper, wrap_error

#: ``trace=True`` writes the trace here, under the DataFlowKernel's run_dir.
TRACE_NAME = "lfm-{label}.trace.jsonl"


def parsl_category(func: Callable[..., Any]) -> str:
    """The category of an app's function as Parsl's Work Queue executor names
    it with ``autocategory=True``: the app's name (``__name__``; Parsl's
    wrappers of python and bash apps keep it)."""
    return getattr(func, "__name__", None) or type(func).__name__


class RaiseAppErrors:
    """Runs a Parsl-wrapped app and raises the app's exception instead of
    returning it in Parsl's ``RemoteExceptionWrapper``, so that lfm records a
    failed app as an ``error`` attempt (not learnt from) while the ``AppFuture``
    still fails with the app's own exception."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.__name__ = parsl_category(func)
        self.__qualname__ = self.__name__
        #: a bash app is measured like ``lfm run``: only the command's processes,
        #: not the Python process running Parsl's bash wrapper (see run_call)
        self.lfm_include_root = not is_bash_app(func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.func(*args, **kwargs)
        if isinstance(result, RemoteExceptionWrapper):
            result.reraise()
        return result


def worker_callable(func: Callable[..., Any]) -> Callable[..., Any]:
    """What lfm runs for an app Parsl submits: the app's own function when
    Parsl's only wrapper around it is its error wrapper (``wrap_error``, which
    imports Parsl on every call: about 0.5 s per Work Queue task here, each
    task being a fresh process), so that the worker needs no Parsl and the
    app's exception is raised as it is; else (bash apps, ``walltime``, in-task
    staging wrappers) :class:`RaiseAppErrors` around Parsl's function."""
    inner = getattr(func, "__wrapped__", None)
    # functools.wraps gave the wrapper the app's names: it is known by its code
    if (inner is not None and getattr(func, "__code__", None) is _WRAP_ERROR_CODE
            and not is_bash_app(func)):
        return inner
    return RaiseAppErrors(func)


#: the code of the wrapper Parsl's ``wrap_error`` puts around every app
_WRAP_ERROR_CODE = wrap_error(lambda: None).__code__


def is_bash_app(func: Callable[..., Any]) -> bool:
    """True for the function Parsl submits for a ``@bash_app``: its error
    wrapper around ``partial(remote_side_bash_executor, app)``."""
    from parsl.app.bash import remote_side_bash_executor
    inner = getattr(func, "__wrapped__", func)
    return getattr(inner, "func", inner) is remote_side_bash_executor


def check_choice(what: str, value: Any, known: tuple[str, ...]) -> None:
    if isinstance(value, str) and value not in known:
        raise ValueError(f"unknown {what} {value!r}; known: {', '.join(known)}")


def trace_sink(trace: Any, run_dir: str, label: str) -> Any:
    """What lfm's executor is given as ``trace``: ``True`` becomes
    ``<run_dir>/lfm-<label>.trace.jsonl``, ``False`` None."""
    if trace is True:
        os.makedirs(run_dir, exist_ok=True)
        return os.path.join(run_dir, TRACE_NAME.format(label=label))
    return None if trace is False else trace


class LfmResults:
    """What both lfm Parsl executors add to Parsl's executor interface: the
    lfm executor's ``stats()`` and the trace's path. The class using it sets
    ``lfm_executor`` (None until started), ``trace``, ``run_dir``, ``label``."""

    lfm_executor: Any = None
    _sink: Any = None

    def stats(self) -> Any:
        """Per category: tasks, attempts, retries, allocated vs used, efficiency
        (a pandas DataFrame: see :meth:`lfm.executors.AutolabelExecutor.stats`)."""
        if self.lfm_executor is None:
            raise RuntimeError(f"Parsl executor {self.label!r} was not started")  # type: ignore[attr-defined]
        return self.lfm_executor.stats()

    @property
    def trace_path(self) -> str | None:
        """Where the trace is written, when it is a file."""
        return sink_path(self._sink)

    def _trace_sink(self) -> Any:
        self._sink = trace_sink(self.trace, self.run_dir, self.label)  # type: ignore[attr-defined]
        return self._sink


def sink_path(sink: Any) -> str | None:
    """The file a trace sink writes, when it is one."""
    if sink is None or callable(getattr(sink, "append", None)):
        return getattr(sink, "path", None)
    return os.fspath(sink)


def chain(source: Future, target: Future, *, on_done: Callable[[], None] | None = None) -> None:
    """Resolve ``target`` (the future Parsl holds) from ``source`` (lfm's),
    whatever ``source`` ends with: a cancellation or a ``BaseException`` that
    is not an ``Exception`` (which would stop Parsl's thread, or the user's
    program) becomes an ordinary exception. ``target`` may already be done
    (Parsl failed it, e.g. the executor's bad state): then nothing happens."""
    def copy(done: Future) -> None:
        try:
            if target.done():
                return
            if done.cancelled():
                error: BaseException | None = CancelledError(
                    "lfm cancelled the task (its executor shut down before it ran)")
            else:
                error = done.exception()
            if error is None:
                target.set_result(done.result())
            else:
                target.set_exception(as_exception(error))
        except BaseException as exc:  # InvalidStateError in a race, or anything else
            if not target.done():
                try:
                    target.set_exception(as_exception(exc))
                except BaseException:
                    pass
        finally:
            if on_done is not None:
                on_done()
    source.add_done_callback(copy)


def as_exception(error: BaseException) -> BaseException:
    """``error`` itself when it is an ``Exception`` (CancelledError counts),
    else lfm's ``CallAborted`` (``RuntimeError`` before lfm has it) carrying it."""
    if isinstance(error, (Exception, CancelledError)):
        return error
    import lfm
    aborted = getattr(lfm, "CallAborted", None)
    message = f"the app raised {type(error).__name__}({error!s})"
    try:
        wrapped = aborted(message) if aborted is not None else RuntimeError(message)
    except Exception:
        wrapped = RuntimeError(message)
    wrapped.__cause__ = error
    return wrapped
