"""Work Queue workers as lfm sees them: their sizes (cores, memory MB, disk MB),
what a worker of a size can be given, what a task asks of it, and which queued
tasks no connected worker fits. (The local worker processes a backend starts:
:mod:`lfm.executors.wqlocal`.)"""
from __future__ import annotations

import math
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


#: A cores label at most this far above a whole number of cores asks Work
#: Queue for that whole number (cores are not a kill limit; see below).
CORES_SLACK = 0.25


def work_queue_allocation(label: Mapping[str, float]) -> dict[str, float]:
    """What a task with ``label`` asks of Work Queue: whole cores (at least 1:
    a worker grants cores only in units, so a 0.3-core label occupies a whole
    core there), memory and disk in whole MB. Unlabelled resources are absent.

    Cores round up, except a label at most :data:`CORES_SLACK` above a whole
    number, which asks for that number: a label learnt from calls that
    measured 1.2 cores (a short call's start-up threads) would otherwise take
    2 cores and halve how many calls a worker runs, for a fifth of a core that
    a call may borrow (cores decide packing only, never a kill)."""
    asked = {}
    if "cores" in label:
        asked["cores"] = float(max(1, math.ceil(float(label["cores"]) - CORES_SLACK - 1e-9)))
    for r in ("memory", "disk"):
        if r in label:
            asked[r] = float(math.ceil(float(label[r])))
    return asked


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
