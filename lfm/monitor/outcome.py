"""Reading a call's outcome: its :class:`~lfm.Resources`, and what the caller
gets (the result, or the error to raise), from what the supervisor found
(:class:`lfm.monitor.supervise.Watched`). What each figure means is in
:mod:`lfm.monitor.isolated`.
"""
from __future__ import annotations

import importlib
import os
import pickle
import signal
import sys
from collections.abc import Mapping

from lfm.monitor import limits as limits_mod
from lfm.monitor import wire
from lfm.monitor.procfs import WALK_CHILDREN
from lfm.resources import (CallAborted, CallExited, CallKilled, MonitorError, RemoteTraceback,
                           ResourceExhaustion, Resources, SerializationError)

# the Work Queue runner imports this module in every task: no typing at run time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lfm.monitor.spawner import Ended
    from lfm.monitor.supervise import Watched

#: How ``memory`` is measured in the isolated modes (``Resources.method``;
#: `` (/proc scan)`` is added where the kernel has no children files and the
#: tree was found by scanning every process).
METHOD = "VmHWM+wait4+sampling"


def load(found: Watched, label: str) -> dict | None:
    """The call's outcome (unpickled), or None when it did not come or a limit
    was breached. SerializationError when it cannot be loaded here."""
    if found.outcome is None:
        return None
    try:
        return wire.load(*found.outcome)
    except Exception as exc:  # noqa: BLE001
        raise SerializationError(
            f"the outcome of {label} could not be loaded in the caller: "
            f"{type(exc).__name__}: {exc}") from None


def resources(outcome: dict | None, found: Watched, include_root: bool) -> Resources:
    """The call's :class:`~lfm.Resources`: the exact measurement its process
    sent with the outcome, combined with sampling; from sampling and the
    process's rusage alone when it sent none (killed, exited)."""
    sampler, ended = found.sampler, found.ended
    measured = outcome.get("measured") if outcome else None
    values: dict[str, float] = {}
    if measured:
        sampled_memory, sampled_virtual = sampler.peaks_until(measured["end"])
        children = measured["children_maxrss"]
        if children > measured.get("spawner_hwm", 0.0):
            kernel_peak = measured["self_hwm"] + children
        else:
            # the largest reaped child may be nothing but the image of its parent,
            # which the kernel's rusage carries across exec(): trust it only when
            # sampling never saw the tree
            kernel_peak = measured["self_hwm"] or (0.0 if sampled_memory else children)
        values.update(
            memory=max(sampled_memory, kernel_peak),
            virtual_memory=max(sampled_virtual, measured["self_vm_peak"]) or None,
            cpu_time=measured["cpu_time"], wall_time=measured["wall_time"],
            bytes_read=measured["bytes_read"], bytes_written=measured["bytes_written"],
            disk=found.disk, start=measured["start"], end=measured["end"],
            total_processes=max(len(sampler.pids),
                                int(include_root) + measured["killed_at_end"], 1))
    else:
        values.update(memory=max(sampler.peak_memory, ended.maxrss if ended else 0.0),
                      wall_time=found.elapsed, start=found.started,
                      end=found.started + found.elapsed,
                      bytes_read=sampler.io["read"], bytes_written=sampler.io["written"],
                      disk=found.disk, total_processes=max(len(sampler.pids), 1))
        if sampler.peak_virtual:
            values["virtual_memory"] = sampler.peak_virtual
        cpu = sampler.cpu_time
        if ended is not None and include_root:
            cpu = max(cpu, ended.cpu_time)
        values["cpu_time"] = cpu
    if values["wall_time"] > 0:
        values["cores"] = values["cpu_time"] / values["wall_time"]
    method = METHOD if sampler.method == WALK_CHILDREN else f"{METHOD} ({sampler.method})"
    return Resources(values, method=method, imports=(outcome or {}).get("imports"))


def finish(outcome: dict | None, found: Watched, res: Resources, limits: Mapping[str, float],
           label: str) -> tuple[Any, Resources]:
    """``(result, res)``, or raise what the caller must get: ResourceExhaustion,
    the call's own exception (original type, remote traceback as its cause),
    CallExited / CallAborted / CallKilled, SerializationError."""
    breached, ended = found.breached, found.ended
    if breached:
        raise ResourceExhaustion(
            f"{label} exceeded its limits ({limits_mod.describe(breached, res)}) and was killed",
            resources=res, exceeded=breached, limits=limits)
    if outcome is None:
        raise _killed(ended, res, label)
    status = outcome["status"]
    if status == "ok":
        limits_mod.raise_if_exceeded(res, limits, label,
                                     "found by the exact measurement after it finished")
        return outcome["result"], res
    if status == "unpicklable":
        exc = SerializationError(f"cannot send the {outcome['what']} of {label} back to the "
                                 f"caller: {outcome['message']}")
    elif status == "load_error":
        exc = _load_error(outcome, label)
    elif "aborted" in outcome:
        exc = _aborted(outcome, res, label)
    else:
        exc, why = original(outcome)
        if why is not None:
            exc = SerializationError(f"{label} raised {outcome['type']}: {outcome['message']}, which "
                                     f"cannot be rebuilt in the caller: {why}")
        elif exc is None:
            exc = _rebuild_exception(outcome["type"], outcome["message"])
    try:
        exc.lfm_resources = res
    except AttributeError:
        pass
    raise exc from RemoteTraceback(outcome.get("traceback", ""))


def original(outcome: dict) -> tuple[BaseException | None, str | None]:
    """The exception the call raised, as sent with its outcome (pickled on its
    own), and None; or None and why it cannot be rebuilt here (its class is
    not importable, its ``__init__`` takes other arguments than its ``args``);
    (None, None) when only its text came."""
    blob = outcome.get("exception")
    if blob is None:
        return None, None
    try:
        return pickle.loads(blob), None
    except Exception as exc:  # noqa: BLE001
        return None, f"{type(exc).__name__}: {exc}"


def _aborted(outcome: dict, res: Resources, label: str) -> CallAborted:
    """The lfm error for a call that raised a BaseException that is no
    Exception (never re-raised here: it would stop the caller's program)."""
    exc = original(outcome)[0]
    if outcome["type"] == "builtins.SystemExit" or isinstance(exc, SystemExit):
        code = outcome.get("exit_code")
        return CallExited(f"{label} called sys.exit({code!r})", code=code, exception=exc,
                          resources=res)
    return CallAborted(f"{label} raised {outcome['aborted']}", exception=exc, resources=res)


def _rebuild_exception(qualified: str, message: str) -> BaseException:
    """An exception of the original type when it can be built from its message."""
    module, _, name = qualified.rpartition(".")
    try:
        cls = getattr(sys.modules.get(module) or importlib.import_module(module), name)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            return cls(message)
    except Exception:  # noqa: BLE001
        pass
    return MonitorError(f"{qualified}: {message}")


def _load_error(outcome: dict, label: str) -> BaseException:
    """The error that stopped the call's process loading the call: the very
    exception (importing the function's module raised it, say), with a note
    saying where, when it travelled and is an ``Exception``; else a
    SerializationError naming it."""
    exc = original(outcome)[0]
    if isinstance(exc, Exception) and not isinstance(exc, MonitorError):
        exc.add_note(f"(raised in lfm's process for {label} while loading the call: "
                     "unpickling it imports the function's module)")
        return exc
    return SerializationError(f"the call to {label} could not be loaded in its process: "
                              f"{outcome['type']}: {outcome['message']}")


def _killed(ended: Ended | None, res: Resources, label: str) -> CallKilled | CallExited:
    if ended is None:
        return CallKilled(f"{label}: the monitor lost contact with the call's process "
                          "(its fork server died)", resources=res)
    status = ended.status
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        hint = " (as the kernel OOM killer does when memory runs out)" if sig == signal.SIGKILL else ""
        return CallKilled(f"{label} was killed by {name}{hint} after "
                          f"{res.get('wall_time', 0):.3g} s, at {res.get('memory', 0):.4g} MB",
                          signal=sig, resources=res)
    code = os.waitstatus_to_exitcode(status)
    return CallExited(f"{label} exited with status {code} without returning (os._exit or "
                      f"similar), after {res.get('wall_time', 0):.3g} s", code=code, resources=res)


def culprit(job: dict, label: str) -> str:
    """Name the first part of a call that cannot be pickled."""
    candidates = [(f"the function {label}", job["fn"])]
    candidates += [(f"argument {i} ({type(a).__name__})", a) for i, a in enumerate(job["args"])]
    candidates += [(f"keyword argument {k!r} ({type(v).__name__})", v)
                   for k, v in job["kwargs"].items()]
    for what, value in candidates:
        try:
            wire.dumps(value)
        except Exception as exc:  # noqa: BLE001
            return f"{what}: {type(exc).__name__}: {exc}"
    return "the call"
