"""The measurement record of one call, and the errors a monitored call can raise.

Units, everywhere in lfm: memory, virtual memory, disk, bytes read and written in
MB (1 MB = 2**20 bytes, as cctools and Work Queue count it);
``cpu_time``, ``wall_time`` and ``start``/``end`` in seconds (the last two since the
epoch); ``cores`` as a float (cpu_time / wall_time); ``total_processes`` a count.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping

# not typing.TYPE_CHECKING: importing typing costs each Work Queue task ~3 ms
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Bytes in one "MB" as lfm (and cctools, Work Queue) reports it.
MB = 1024 * 1024

#: Resource keys lfm may report, with their units (for docs, tables and the CLI).
UNITS: dict[str, str] = {
    "memory": "MB",
    "virtual_memory": "MB",
    "disk": "MB",
    "bytes_read": "MB",
    "bytes_written": "MB",
    "cores": "cores",
    "cpu_time": "s",
    "wall_time": "s",
    "total_processes": "count",
    "start": "s since epoch",
    "end": "s since epoch",
}

#: Resources that a limit or an allocation label can name.
LIMITABLE = ("memory", "cores", "disk", "wall_time", "virtual_memory")


class Resources(Mapping[str, float]):
    """Read-only mapping resource name -> measured value (units in :data:`UNITS`).

    A value that could not be measured is absent, never a negative sentinel.
    Extra, non-numeric facts about the measurement are attributes:

    ``method``
        how the memory peak was obtained, e.g. ``"clear_refs+VmHWM"``,
        ``"rusage+VmHWM"`` or ``"sampling"`` (inline mode falls back when the
        kernel does not let it reset the high-water mark).
    ``snapshots``
        the periodic snapshots taken during the call (list of dicts with
        ``time`` in s since the start, ``memory`` MB, ``cores``, ...), empty when
        none were kept.
    ``imports``
        dict top-level module name -> its file (the module's ``__file__``, a
        package's ``__init__.py``; None when it has none, e.g. a namespace
        package) of every module outside the standard library
        (``sys.stdlib_module_names``) that the call's process imported while
        loading the function and running the call. Filled in the isolated modes
        (fork server, ``isolate="fork"``; see :mod:`lfm.monitor.isolated` for
        exactly what counts), empty inline. Never includes ``lfm`` itself.
    """

    __slots__ = ("_values", "method", "snapshots", "imports")

    def __init__(self, values: Mapping[str, float] | None = None, *, method: str = "",
                 snapshots: list[dict[str, float]] | None = None,
                 imports: Mapping[str, str | None] | None = None) -> None:
        clean: dict[str, float] = {}
        for key, value in dict(values or {}).items():
            if value is None:
                continue
            value = float(value)
            if value != value or value < 0:  # NaN or negative: not measured
                continue
            clean[str(key)] = value
        self._values = clean
        self.method = method
        self.snapshots = list(snapshots or [])
        self.imports: dict[str, str | None] = dict(imports or {})

    def __getitem__(self, key: str) -> float:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={_fmt(v)}" for k, v in self._values.items())
        return f"Resources({body})"

    def __reduce__(self):
        return (_rebuild, (self._values, self.method, self.snapshots, self.imports))

    def to_dict(self) -> dict[str, float]:
        """A plain ``dict`` copy of the measured values."""
        return dict(self._values)


def _rebuild(values, method, snapshots, imports=None) -> Resources:
    return Resources(values, method=method, snapshots=snapshots, imports=imports)


def _fmt(value: float) -> str:
    return f"{value:.6g}"


class MonitorError(Exception):
    """Base class of the errors lfm raises about a monitored call."""


class ResourceExhaustion(MonitorError):
    """The call exceeded one or more of its limits and its process tree was killed.

    Attributes: ``resources`` (:class:`Resources` measured up to the kill),
    ``exceeded`` (dict resource -> the limit that was exceeded), ``limits`` (all
    limits the call ran with), ``attempts`` (for executors: the history of
    attempts, a list of dicts; empty for a single call).
    """

    def __init__(self, message: str, *, resources: Resources | None = None,
                 exceeded: Mapping[str, float] | None = None,
                 limits: Mapping[str, float] | None = None,
                 attempts: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.resources = resources if resources is not None else Resources()
        self.exceeded = dict(exceeded or {})
        self.limits = dict(limits or {})
        self.attempts = list(attempts or [])

    def __reduce__(self):
        return (_rebuild_exhaustion, (self.args[0], self.resources, self.exceeded,
                                      self.limits, self.attempts))


def _rebuild_exhaustion(message, resources, exceeded, limits, attempts):
    return ResourceExhaustion(message, resources=resources, exceeded=exceeded,
                              limits=limits, attempts=attempts)


class CallKilled(MonitorError):
    """The call's process died without returning: killed by a signal (e.g. the
    kernel OOM killer's SIGKILL) or it called ``os._exit``.

    Attributes: ``signal`` (signal number or None), ``exit_code`` (or None),
    ``resources`` (what was measured until it died).
    """

    def __init__(self, message: str, *, signal: int | None = None,
                 exit_code: int | None = None, resources: Resources | None = None) -> None:
        super().__init__(message)
        self.signal = signal
        self.exit_code = exit_code
        self.resources = resources if resources is not None else Resources()

    def __reduce__(self):
        return (_rebuild_killed, (self.args[0], self.signal, self.exit_code, self.resources))


def _rebuild_killed(message, signal, exit_code, resources):
    return CallKilled(message, signal=signal, exit_code=exit_code, resources=resources)


class CallAborted(MonitorError):
    """The call raised a ``BaseException`` that is no ``Exception``
    (``KeyboardInterrupt``, ``GeneratorExit``, ...) in its own process. lfm
    never re-raises such an exception in the caller (it would stop the caller's
    program): it raises this error naming it ("simulate raised
    KeyboardInterrupt()").

    Attributes: ``exception`` (the original exception, or None when it could
    not be sent back), ``resources`` (:class:`Resources` measured until then).
    """

    def __init__(self, message: str, *, exception: BaseException | None = None,
                 resources: Resources | None = None) -> None:
        super().__init__(message)
        self.exception = exception
        self.resources = resources if resources is not None else Resources()

    def __reduce__(self):
        return (_rebuild_aborted, (type(self), self.args[0], self.exception, self.resources,
                                   getattr(self, "code", None)))


class CallExited(CallAborted):
    """The call ended its process: it called ``sys.exit(n)`` / raised
    ``SystemExit`` (an ``argparse`` error does; message "simulate called
    sys.exit(3)"), or it called ``os._exit(n)`` ("simulate exited with status 5
    without returning").

    Attributes: those of :class:`CallAborted` (``exception`` is the
    ``SystemExit``, None for ``os._exit``) and ``code`` (the ``SystemExit``'s
    code as given, or the exit status of ``os._exit``).
    """

    def __init__(self, message: str, *, code: Any = None,
                 exception: BaseException | None = None,
                 resources: Resources | None = None) -> None:
        if isinstance(exception, SystemExit) and exception.code is None and exception.args:
            # tblib's pickling support (Parsl installs it) rebuilds exceptions
            # without __init__, which is what sets SystemExit.code from its args
            exception.code = exception.args[0] if len(exception.args) == 1 else exception.args
        super().__init__(message, exception=exception, resources=resources)
        self.code = code


def _rebuild_aborted(cls, message, exception, resources, code):
    if issubclass(cls, CallExited):
        return cls(message, code=code, exception=exception, resources=resources)
    return cls(message, exception=exception, resources=resources)


class SerializationError(MonitorError, TypeError):
    """An argument or a result of a call could not be sent between processes.
    The message names what could not be sent (which argument, or the result)."""


class RemoteTraceback(Exception):
    """Carries the traceback text of an exception raised in another process;
    set as ``__cause__`` of the re-raised exception so it prints with it."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f"\n\n--- traceback in the monitored process ---\n{self.tb}"
