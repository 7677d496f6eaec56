"""Worker-side runner: ``python -m lfm.executors.runner IN OUT``.

``IN`` is a cloudpickle of ``{"fn", "args", "kwargs", "limits", "interval"}``
written by :func:`write_call`; the runner executes the call under lfm's monitor
with ``limits`` (so a millisecond spike over the label is caught, which a
sampling monitor misses) and always writes ``OUT`` (read back with
:func:`read_outcome`), then exits 0. Whatever the call does is its outcome in
``OUT``: a return, an exception, a ``BaseException`` (``sys.exit()``,
``KeyboardInterrupt``, ... as :class:`lfm.CallExited` / :class:`lfm.CallAborted`),
``os._exit`` or a signal (:class:`lfm.CallKilled`), an exhaustion (a SIGKILL
while the machine's OOM-kill count rose included: see :func:`oom_exhaustion`). The call runs in the task's
sandbox (the runner's working directory), which the monitor measures as the
call's disk (``workdir``), as Work Queue measures the sandbox.

The runner's own exit statuses: 0 ``OUT`` written; 2 wrong arguments; 3 ``OUT``
could not be written. A Python start-up failure (1, e.g. lfm not installed for
that interpreter) or no ``OUT`` therefore means the runner itself could not
run, never that the call failed.
"""
from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable, Mapping

from lfm.resources import RemoteTraceback, Resources, SerializationError

# every Work Queue task imports this module: no typing (~3 ms) at run time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lfm.executors.backend import Outcome


def write_call(path: str, fn: Callable[..., Any], args: tuple, kwargs: dict,
               limits: Mapping[str, float], interval: float = 0.1) -> None:
    """Serialize a call for the runner (cloudpickle: lambdas and closures travel by value)."""
    import cloudpickle
    payload = {"fn": fn, "args": tuple(args), "kwargs": dict(kwargs), "limits": dict(limits),
               "interval": float(interval)}
    try:
        data = cloudpickle.dumps(payload)
    except Exception as exc:
        raise SerializationError(f"cannot serialize the call {getattr(fn, '__qualname__', fn)!r} "
                                 f"or its arguments for a Work Queue task: {exc}") from exc
    with open(path, "wb") as f:
        f.write(data)


EXIT_OK, EXIT_USAGE, EXIT_NO_OUTPUT = 0, 2, 3


def read_outcome(path: str, *, token: str | None = None, host: str | None = None,
                 max_bytes: int | None = None) -> Outcome:
    """The :class:`Outcome` the runner wrote to ``path`` (the call's exception
    gets its remote traceback back as ``__cause__``; the call's ``imports``
    come back on its resources when the monitor measured them). Before anything is
    unpickled the file is checked (``lfm.executors.wqauth.load_outcome``):
    at most ``max_bytes``, the task's ``token``, the record's structure and
    types, and its host against ``host`` (Work Queue's worker), when given;
    :class:`~lfm.executors.wqauth.RefusedOutcome` otherwise."""
    from lfm.executors.backend import Outcome
    from lfm.executors.wqauth import load_outcome
    record = load_outcome(path, token=token, host=host, max_bytes=max_bytes)
    error = record.get("error")
    tb = record.get("traceback")
    if error is not None and tb:
        error.__cause__ = RemoteTraceback(tb)
    resources = Resources(record.get("resources") or {})
    if record.get("imports"):
        try:
            resources = Resources(record.get("resources") or {}, imports=record["imports"])
        except TypeError:  # a Resources without imports: nothing to carry
            pass
    return Outcome(record["status"], value=record.get("value"), error=error,
                   resources=resources,
                   exceeded=dict(record.get("exceeded") or {}), host=record.get("host", ""),
                   granted=dict(record.get("granted") or {}))


def run_monitored(fn: Callable, args: tuple, kwargs: dict, limits: Mapping[str, float], *,
                  interval: float = 0.1, should_stop: Callable[[], bool] | None = None,
                  isolate: bool | str = True, workdir: str | None = None) -> dict[str, Any]:
    """Run one call in lfm's isolated monitored process under ``limits``
    (``lfm.monitor.run_call``; ``isolate="fork"`` forks it from this process)
    and describe how it ended: the fields of an
    :class:`~lfm.executors.backend.Outcome` (``status``, ``value``, ``error``,
    ``resources``, ``exceeded``). ``should_stop`` is asked at every snapshot;
    True kills the call. ``workdir``: the directory whose occupancy is the
    call's disk (``run_call(workdir=)``). A ``BaseException``
    that reaches here (``SystemExit``, ``KeyboardInterrupt`` raised by the
    call) is the call's outcome as :class:`lfm.CallExited` /
    :class:`lfm.CallAborted`, never raised. Used by the local backend and by
    this runner (which must stay light to import: no dataclasses here)."""
    from lfm.monitor.decorator import run_call
    from lfm.resources import CallKilled, ResourceExhaustion

    callback = None
    if should_stop is not None:
        def callback(snapshot):  # noqa: ARG001 - the monitor passes a snapshot
            if should_stop():
                raise _Stop("the executor was killed while the call ran")
    ooms = oom_baseline()
    try:
        value, res = run_call(fn, args, kwargs, limits=dict(limits), isolate=isolate,
                              callback=callback, interval=interval, workdir=workdir)
        return {"status": "ok", "value": value, "resources": res}
    except ResourceExhaustion as exc:
        return {"status": "exhausted", "error": exc, "resources": exc.resources,
                "exceeded": dict(exc.exceeded)}
    except CallKilled as exc:
        if exc.signal == 9 and ooms >= 0 and oom_kills() > ooms:  # the kernel OOM-killed
            return oom_exhaustion(fn, exc, limits)
        return {"status": "error", "error": exc, "resources": exc.resources}
    except _Stop as exc:
        return {"status": "error", "error": CallKilled(str(exc)), "resources": Resources()}
    except Exception as exc:
        res = getattr(exc, "lfm_resources", None)
        return {"status": "error", "error": exc,
                "resources": res if isinstance(res, Resources) else Resources()}
    except BaseException as exc:  # the call's SystemExit, KeyboardInterrupt, GeneratorExit
        res = getattr(exc, "lfm_resources", None)
        res = res if isinstance(res, Resources) else Resources()
        return {"status": "error", "error": aborted(fn, exc, res), "resources": res}


def oom_kills() -> int:
    """How many processes the kernel's OOM killer has killed on this machine
    (``oom_kill`` of ``/proc/vmstat``, which counts the kills of memory cgroups'
    OOM killers too); -1 when the kernel does not say."""
    try:
        with open("/proc/vmstat", "rb") as f:
            data = f.read()
    except OSError:
        return -1
    at = data.find(b"\noom_kill ")
    if at < 0:
        return -1
    end = data.find(b"\n", at + 1)
    return int(data[at + 10:end if end > 0 else None])


_baseline = (-1e9, -1)  # (monotonic time, oom_kills()) of the last read


def oom_baseline(max_age: float = 1.0) -> int:
    """``oom_kills()`` as of at most ``max_age`` s ago: reading ``/proc/vmstat``
    costs ~0.4 ms here, too much for every local call; a kill counted in the
    second before a call started could make a coincident SIGKILL of the call
    look like the OOM killer's (documented, and unlikely: memory was short)."""
    global _baseline
    import time
    now = time.monotonic()
    when, count = _baseline
    if now - when > max_age:
        count = oom_kills()
        _baseline = (now, count)
    return count


def oom_exhaustion(fn: Callable, killed: Exception, limits: Mapping[str, float]) -> dict[str, Any]:
    """The outcome of a call SIGKILLed while the kernel's OOM killer killed: an
    exhaustion of memory (the machine or its memory cgroup ran short), which
    executors retry with a larger label. Another SIGKILL (the OOM counter did
    not rise while the call ran) stays :class:`lfm.CallKilled`."""
    from lfm.resources import ResourceExhaustion
    res = getattr(killed, "resources", None) or Resources()
    memory = limits.get("memory", res.get("memory", 0.0))
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    error = ResourceExhaustion(
        f"{name} was killed by the kernel's OOM killer at {res.get('memory', 0):.4g} MB "
        f"(the machine's oom_kill count rose while it ran; label {memory:g} MB)",
        resources=res, exceeded={"memory": memory}, limits=limits)
    return {"status": "exhausted", "error": error, "resources": res, "exceeded": {"memory": memory}}


def aborted(fn: Callable, exc: BaseException, resources: Resources) -> Exception:
    """The lfm error for a call that raised a ``BaseException`` that is no
    ``Exception``: :class:`lfm.CallExited` for ``SystemExit`` ("f called
    sys.exit(3)"), :class:`lfm.CallAborted` for the others; ``exception`` the
    original when it can be pickled (it travels back from a worker)."""
    from lfm.resources import CallAborted, CallExited
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    try:
        pickle.dumps(exc)
        original: BaseException | None = exc
    except Exception:
        original = None
    if isinstance(exc, SystemExit):
        return CallExited(f"{name} called sys.exit({exc.code!r})", code=exc.code,
                          exception=original, resources=resources)
    return CallAborted(f"{name} raised {type(exc).__name__}({', '.join(map(repr, exc.args))})",
                       exception=original, resources=resources)


class _Stop(Exception):
    pass


def run(in_path: str, out_path: str, sandbox: str | None = None) -> None:
    """Execute the call in ``in_path``; write its outcome to ``out_path``.
    ``sandbox``: the task's directory, made again for ``OUT`` if the call
    removed it."""
    host = os.uname().nodename
    try:
        with open(in_path, "rb") as f:
            payload = pickle.load(f)
    except BaseException as exc:  # a module missing here, or unpickling code that exits
        import traceback
        _write(out_path, {"status": "error", "host": host,
                          "error": SerializationError(f"the runner on {host} could not load the call "
                                                      f"from {in_path}: {exc!r}"),
                          "traceback": traceback.format_exc()})
        return
    # this process is small and fresh: fork the call's process from it rather
    # than start lfm's fork server (a second interpreter) for a single call;
    # its working directory is the task's sandbox, the call's disk
    try:
        outcome = run_monitored(payload["fn"], payload["args"], payload["kwargs"],
                                payload["limits"], interval=payload.get("interval", 0.1),
                                isolate="fork", workdir=os.getcwd())
    except BaseException as exc:  # lfm's own failure around the call: still an outcome
        import traceback
        outcome = {"status": "error", "resources": Resources(), "error": RuntimeError(
            f"lfm's runner on {host} failed around the call: {exc!r}\n{traceback.format_exc()}")}
    error = outcome.get("error")
    cause = error.__cause__ if error is not None else None
    res = outcome["resources"]
    record = {"status": outcome["status"], "value": outcome.get("value"), "error": error,
              "traceback": cause.tb if isinstance(cause, RemoteTraceback) else None,
              "resources": dict(res), "exceeded": outcome.get("exceeded", {}),
              "host": host, "granted": granted()}
    imports = getattr(res, "imports", None)
    if imports:
        record["imports"] = dict(imports)
    try:
        _write(out_path, record, sandbox)
    except BaseException as exc:  # the result or the exception cannot be pickled
        what = "result" if outcome["status"] == "ok" else f"exception {error!r}"
        record.update(status="error", value=None, traceback=None,
                      error=SerializationError(f"the call's {what} cannot be sent back from {host}: "
                                               f"{exc}"))
        _write(out_path, record, sandbox)


def granted() -> dict[str, float]:
    """The allocation Work Queue's worker gave this task (its CORES, MEMORY and
    DISK environment variables; MB for memory and disk), as far as it says."""
    out = {}
    for resource in ("cores", "memory", "disk"):
        try:
            out[resource] = float(os.environ[resource.upper()])
        except (KeyError, ValueError):
            pass
    return out


def _write(path: str, record: dict[str, Any], sandbox: str | None = None) -> None:
    from lfm.executors.wqauth import pack_outcome
    from lfm.monitor.wire import to_bytes
    chunks = pack_outcome(record, to_bytes)  # with the task's token (LFM_OUTCOME_TOKEN)
    if sandbox is not None and os.path.dirname(path) == sandbox and not os.path.isdir(sandbox):
        # the call removed its sandbox, where OUT goes: the worker looks for
        # OUT at the sandbox's path, so make that directory again
        os.makedirs(sandbox, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
    os.replace(tmp, path)


USAGE = "usage: python -m lfm.executors.runner [--prefix DIR] [--exec-prefix DIR] IN OUT"


def main(argv: list[str]) -> int:
    """``IN OUT``; ``--prefix``/``--exec-prefix``: the virtual environment's
    ``sys.prefix``/``sys.exec_prefix``, restored with ``site``'s builtins when
    the runner was started with ``python -S`` (see :mod:`lfm.executors.pystart`)."""
    options: dict[str, str] = {}
    argv = list(argv)
    while argv and argv[0] in ("--prefix", "--exec-prefix") and len(argv) > 1:
        name = argv.pop(0)
        options[name] = argv.pop(0)
    if len(argv) != 2:
        print(USAGE, file=sys.stderr)
        return EXIT_USAGE
    if sys.flags.no_site:
        from lfm.executors.pystart import restore_site
        restore_site(options.get("--prefix"), options.get("--exec-prefix"))
    try:
        # absolute: the call may change or remove the working directory
        run(os.path.abspath(argv[0]), os.path.abspath(argv[1]), sandbox=os.getcwd())
    except BaseException as exc:  # OUT could not be written (disk full, ...)
        print(f"lfm runner: cannot write the outcome to {argv[1]}: {exc!r}", file=sys.stderr)
        return EXIT_NO_OUTPUT
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
