"""Work Queue workers as lfm sees them: their sizes (cores, memory MB, disk MB),
what a worker of a size can be given, which queued tasks no connected worker
fits, when a local worker that exited is started again, and stopping the local
worker processes that the backend starts (with the tasks they run)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from typing import Any

from lfm.resources import ResourceExhaustion

WORKER_RESOURCES = ("cores", "memory", "disk")


def dispatchable(size: Mapping[str, float]) -> dict[str, float]:
    """What a worker of ``size`` can be given: its disk counts as at most its
    memory, because Debian's cctools 9.9 manager never dispatches a task whose
    disk exceeds the worker's memory (measured: a 1-core, 700 MB memory,
    1500 MB disk worker runs a 700 MB disk task, never a 701 MB one)."""
    out = dict(size)
    if "disk" in out and "memory" in out:
        out["disk"] = min(out["disk"], out["memory"])
    return out


def unfit_tasks(needs: Mapping[str, Mapping[str, float]], largest: Mapping[str, float],
                since: dict[str, float], now: float, timeout: float) -> list[tuple[str, dict]]:
    """The queued tasks (key -> what each asks: cores, memory MB, disk MB) that
    have fitted no connected worker (``largest``, per resource) for ``timeout``
    seconds, as ``(key, {resource: asked above the largest})``. ``since`` (key
    -> monotonic time since it does not fit) is updated: a task that fits
    again leaves it."""
    expired = []
    for key, asked in needs.items():
        over = {r: v for r, v in asked.items() if r in largest and v > largest[r]}
        if not over:
            since.pop(key, None)
        elif now - since.setdefault(key, now) >= timeout:
            expired.append((key, over))
    return expired


def unfit_error(label: Mapping[str, float], over: Mapping[str, float],
                largest: Mapping[str, float], connected: int,
                timeout: float) -> ResourceExhaustion:
    """The error of a task that no connected worker fitted for ``timeout`` s."""
    size = ", ".join(f"{r} {largest[r]:g}" for r in WORKER_RESOURCES if r in largest)
    asked = ", ".join(f"{r} {v:g}" for r, v in label.items())
    return ResourceExhaustion(
        f"the task's label ({asked}) fits no connected Work Queue worker: the largest offers "
        f"{size} ({connected} connected; disk counted as at most the worker's memory); "
        f"waited fit_timeout={timeout:g} s", exceeded=dict(over), limits=dict(label))


def check_workers(workers: Any) -> list[dict[str, float]]:
    """``workers=``: a list of worker sizes (see :func:`check_worker`), validated."""
    if workers is None:
        return []
    example = "e.g. [{'cores': 2, 'memory': 4096, 'disk': 8192}] * 3"
    if isinstance(workers, Mapping):
        raise ValueError(f"workers must be a list of worker sizes ({example}), got one size {dict(workers)}: "
                         f"put it in a list")
    if isinstance(workers, (str, bytes)) or not isinstance(workers, Iterable):
        raise ValueError(f"workers must be a list of worker sizes ({example}), got {workers!r}")
    return [check_worker(i, w) for i, w in enumerate(workers)]


def check_worker(index: int, size: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(size, Mapping):
        raise TypeError(f"workers[{index}] must be a dict with cores, memory (MB), disk (MB); "
                        f"got {size!r}")
    unknown = sorted(set(size) - set(WORKER_RESOURCES))
    missing = [r for r in WORKER_RESOURCES if r not in size]
    if unknown or missing:
        raise ValueError(f"workers[{index}] = {dict(size)}: needs exactly {', '.join(WORKER_RESOURCES)}"
                         + (f"; unknown {unknown}" if unknown else "")
                         + (f"; missing {missing}" if missing else ""))
    out = {}
    for r in WORKER_RESOURCES:
        try:
            value = float(size[r])
        except (TypeError, ValueError):
            raise ValueError(f"workers[{index}][{r!r}] must be a number, got {size[r]!r}") from None
        if not value >= 1:
            raise ValueError(f"workers[{index}][{r!r}] must be >= 1, got {size[r]!r}")
        out[r] = value
    return out


#: A local worker that exits sooner than this (s) after its start exited "quickly" ...
QUICK_EXIT = 10.0
#: ... and after this many quick exits in a row it is not started again.
MAX_QUICK_EXITS = 3


class Restarts:
    """When to start again a local worker (``workers=``) that exited while the
    backend runs: always (it reached its idle ``--timeout``, was killed, or
    crashed), unless it exited within :data:`QUICK_EXIT` s of its start
    :data:`MAX_QUICK_EXITS` times in a row (it cannot run here: then it is
    given up). One per worker slot."""

    __slots__ = ("quick", "started")

    def __init__(self) -> None:
        self.quick = 0
        self.started = time.monotonic()

    def again(self, now: float) -> bool:
        """The slot's worker exited at ``now`` (monotonic s): start it again?"""
        self.quick = self.quick + 1 if now - self.started < QUICK_EXIT else 0
        self.started = now
        return self.quick < MAX_QUICK_EXITS


def kill_processes_under(directory: str) -> int:
    """SIGKILL every process of this user whose working directory is inside
    ``directory``, with its descendants; the number killed."""
    import psutil
    prefix = os.path.realpath(directory) + os.sep
    victims = []
    for proc in psutil.process_iter(["cwd", "uids"]):
        cwd = proc.info.get("cwd")
        if cwd and (cwd + os.sep).startswith(prefix) and proc.pid != os.getpid():
            try:
                victims += [proc, *proc.children(recursive=True)]
            except psutil.Error:
                victims.append(proc)
    for victim in victims:
        try:
            victim.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(victims, timeout=3)
    return len(victims)


def stop_process_group(proc: subprocess.Popen, grace: float = 3.0) -> None:
    for sig, timeout in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    # the worker runs each task in a process group of its own; after a crash of the
    # worker they would outlive it: find them by their working directory
    workdir = getattr(proc, "lfm_workdir", None)
    if workdir:
        kill_processes_under(workdir)
    deadline = time.time() + 2
    while time.time() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
