"""What a finished Work Queue task means: the call's outcome from the runner's
output file, or, when the runner wrote none, Work Queue's result code and the
runner's own exit status told apart from anything the call did."""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

from lfm.executors.backend import Attempt, Outcome
from lfm.resources import CallKilled, MonitorError, ResourceExhaustion

#: the runner's own exit statuses (``lfm.executors.runner``); anything the call
#: does is reported in its output file instead
RUNNER_STATUS = {2: "was started with wrong arguments", 3: "could not write its output file",
                 126: "is not executable", 127: "was not found (no such interpreter)"}


class WorkQueueTaskError(MonitorError):
    """Work Queue could not run an attempt (result code other than success, or
    the runner left no output). ``result`` is Work Queue's result name (e.g.
    ``"OUTPUT_MISSING"``, ``"MAX_RETRIES"``, ``"FORSAKEN"``), ``host`` the worker,
    ``stdout`` the tail of the task's output."""

    def __init__(self, message: str, *, result: str = "", host: str = "", stdout: str = "") -> None:
        super().__init__(message)
        self.result = result
        self.host = host
        self.stdout = stdout


def task_outcome(attempt: Attempt, info: dict[str, Any], python: str,
                 read: Callable[[str, str], Outcome]) -> Outcome:
    """The :class:`Outcome` of a finished Work Queue task: the runner's output
    file when it wrote one (``read(path, host)`` checks and loads it),
    otherwise what Work Queue's result code and the runner's exit status say
    (``info`` as the manager sends it; ``python`` the workers' interpreter,
    for the messages). Removes the attempt's directory."""
    _, directory, out_path = attempt.handle
    host, name, stdout = info["host"], info["result_name"], info["stdout"]
    try:
        # OUTPUT_MISSING with the runner's outcome back: one of the call's own
        # staged outputs is missing (e.g. the call failed before writing it);
        # the call's outcome says why, as Parsl's executor reports it
        if (name in ("SUCCESS", "OUTPUT_MISSING") and info["return_status"] == 0
                and os.path.exists(out_path)):
            outcome = read(out_path, host)
            outcome.host = outcome.host or host
            return outcome
        if name == "RESOURCE_EXHAUSTION":
            return Outcome("exhausted", host=host, error=ResourceExhaustion(
                f"Work Queue killed the task on {host} for exceeding its label {attempt.label}",
                limits=attempt.label))
        if name == "DISK_ALLOC_FULL":  # the worker saw the sandbox outgrow the disk label
            exceeded = {"disk": attempt.label["disk"]} if "disk" in attempt.label else {}
            return Outcome("exhausted", host=host, exceeded=exceeded, error=ResourceExhaustion(
                f"Work Queue killed the task on {host}: its sandbox outgrew the disk label "
                f"({attempt.label.get('disk', 0):g} MB)", exceeded=exceeded, limits=attempt.label))
        if name == "SIGNAL":
            return Outcome("error", host=host, error=CallKilled(
                f"the task was killed by a signal on {host}; output: {stdout[-500:]!r}"))
        if name in ("SUCCESS", "OUTPUT_MISSING"):
            # the runner writes the outcome of whatever the call does: no
            # output means the runner itself could not run or was killed
            status = info["return_status"]
            if status > 128 and status - 128 < 65:  # the shell reports a killed runner so
                return Outcome("error", host=host, error=CallKilled(
                    f"the runner was killed by signal {status - 128} on {host} before it "
                    f"wrote the outcome; output: {stdout[-500:]!r}", signal=status - 128))
            return Outcome("error", host=host, error=WorkQueueTaskError(
                f"{runner_failure(status, stdout, python)} on {host}; output: {stdout[-1500:]}",
                result=name, host=host, stdout=stdout))
        return Outcome("error", host=host, error=WorkQueueTaskError(
            f"Work Queue gave up on the task: result {name} after {info['submissions']} "
            f"submission(s) (last host {host or 'none'})", result=name, host=host, stdout=stdout))
    except Exception as exc:
        return Outcome("error", host=host, error=WorkQueueTaskError(
            f"cannot read the task's output from {host}: {exc!r}", result=name, host=host,
            stdout=stdout))
    finally:
        shutil.rmtree(directory, ignore_errors=True)

def runner_failure(status: int, stdout: str, python: str) -> str:
    """Why the runner left no outcome, from its exit status and output."""
    if status in RUNNER_STATUS:
        return f"the runner ({python!r}) {RUNNER_STATUS[status]}"
    if "No module named" in stdout or "ModuleNotFoundError" in stdout:
        return (f"the runner could not import what it needs (is lfm installed for "
                f"{python!r} there?)")
    if status:
        return f"the runner exited with status {status} before it could run the call"
    return "the runner left no output file"
