"""The embedded local backend: packs attempts on this machine by their labels.

Capacity is this machine's cores, memory (total RAM, MB) and disk (free space of
the working directory, MB), or what the user gives. An attempt starts only when
its label fits the free capacity: queued attempts are considered first-fit in
submission order, so small ones start beside a big one; but once the oldest
queued attempt has waited ``backfill_wait`` seconds, nothing overtakes it any
more, so a big task is never starved by a stream of small ones.

Each running attempt runs in lfm's isolated monitored process
(``lfm.monitor.run_call``) with its label as limits (memory, disk, wall_time;
cores only for packing, see :func:`lfm.executors.backend.limits_from_label`).
A resource the predictor does not label counts as 1 core / 0 MB for packing.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Mapping

from lfm.checks import positive
from lfm.executors.backend import Attempt, Outcome, limits_from_label
from lfm.resources import MB, UNITS

#: Resources the local backend packs by.
PACKED = ("cores", "memory", "disk")


def machine_capacity(workdir: str | os.PathLike | None = None) -> dict[str, float]:
    """This machine's size: ``cores`` (logical CPUs), ``memory`` (total RAM, MB),
    ``disk`` (free space, MB, of ``workdir``, else of the temporary directory
    where every call's scratch directory is made: what calls' disk labels use)."""
    import tempfile

    import psutil  # here: the Work Queue runner imports this module and needs neither
    return {"cores": float(os.cpu_count() or 1),
            "memory": psutil.virtual_memory().total / MB,
            "disk": shutil.disk_usage(os.fspath(workdir or tempfile.gettempdir())).free / MB}


class LocalBackend:
    """Runs attempts on this machine within ``capacity`` (see the module doc).

    capacity : mapping with any of cores, memory (MB), disk (MB); missing ones
        are measured with :func:`machine_capacity`.
    backfill_wait : seconds the oldest queued attempt may be overtaken by
        smaller ones before it reserves the capacity it needs.
    interval : seconds between the monitor's limit checks of a running call
        (``run_call``'s ``interval``).
    """

    name = "local"

    def __init__(self, capacity: Mapping[str, float] | None = None, backfill_wait: float = 10.0,
                 interval: float = 0.1) -> None:
        measured = machine_capacity()
        given = dict(capacity or {})
        unknown = sorted(set(given) - set(PACKED))
        if unknown:
            raise ValueError(f"unknown capacity resource(s) {unknown}; known: {', '.join(PACKED)}")
        given = {r: positive(v, f"capacity {r}", unit=UNITS[r]) for r, v in given.items()}
        self.capacity = {r: given.get(r, measured[r]) for r in PACKED}
        self.backfill_wait = float(backfill_wait)
        self.interval = float(interval)
        self._free = dict(self.capacity)
        self._lock = threading.Condition()
        self._pending: list[tuple[float, Attempt]] = []  # (queued at, attempt)
        self._running: dict[int, tuple[Attempt, dict[str, float], threading.Thread]] = {}
        self._done: Callable[[Attempt, Outcome], None] | None = None
        self._closed = False
        self._killing = False
        self._host = socket.gethostname()
        #: largest number of attempts that ran at the same time (for tests and benchmarks)
        self.max_concurrent = 0

    # ---- Backend protocol --------------------------------------------------------------
    def start(self, done: Callable[[Attempt, Outcome], None]) -> None:
        self._done = done

    def max_resources(self) -> dict[str, float]:
        return dict(self.capacity)

    def submit(self, attempt: Attempt) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the local backend is shut down")
            self._pending.append((time.monotonic(), attempt))
            self._schedule()

    def cancel(self, attempt: Attempt) -> bool:
        with self._lock:
            for i, (_, queued) in enumerate(self._pending):
                if queued is attempt:
                    del self._pending[i]
                    self._schedule()
                    return True
        return False

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
            self._pending.clear()
            if not wait:
                self._killing = True
            threads = [t for _, _, t in self._running.values()]
        for thread in threads:
            thread.join()

    # ---- packing -----------------------------------------------------------------------
    def need(self, label: Mapping[str, float]) -> dict[str, float]:
        """What an attempt with ``label`` occupies while it runs (capped to capacity)."""
        default = {"cores": 1.0, "memory": 0.0, "disk": 0.0}
        return {r: min(float(label.get(r, default[r])), self.capacity[r]) for r in PACKED}

    @staticmethod
    def granted(label: Mapping[str, float], need: Mapping[str, float]) -> dict[str, float]:
        """What an attempt was allocated while it ran: the cores it occupied in
        packing (its label as is, fractions included; 1 when unlabelled) and
        the memory and disk it reserved when labelled (MB, capped to capacity)."""
        return {r: need[r] for r in PACKED if r == "cores" or r in label}

    def _fits(self, need: Mapping[str, float]) -> bool:
        return all(need[r] <= self._free[r] + 1e-9 for r in PACKED)

    def _schedule(self) -> None:
        """Start what fits; called with the lock held."""
        now = time.monotonic()
        i = 0
        while i < len(self._pending):
            queued_at, attempt = self._pending[i]
            need = self.need(attempt.label)
            if self._fits(need):
                del self._pending[i]
                if not attempt.starting():
                    continue
                self._launch(attempt, need)
                continue
            if i == 0 and now - queued_at > self.backfill_wait:
                break  # the oldest attempt reserves: nothing overtakes it any more
            i += 1

    def _launch(self, attempt: Attempt, need: dict[str, float]) -> None:
        for r in PACKED:
            self._free[r] -= need[r]
        key = id(attempt)
        thread = threading.Thread(target=self._run, args=(attempt, need), daemon=True,
                                  name=f"lfm-local-task{attempt.task_id}.{attempt.number}")
        self._running[key] = (attempt, need, thread)
        self.max_concurrent = max(self.max_concurrent, len(self._running))
        thread.start()

    # ---- one attempt -------------------------------------------------------------------
    def _run(self, attempt: Attempt, need: dict[str, float]) -> None:
        outcome = run_attempt(attempt.fn, attempt.args, attempt.kwargs,
                              limits_from_label(self._capped(attempt.label)),
                              interval=self.interval, should_stop=lambda: self._killing)
        outcome.host = self._host
        outcome.granted = self.granted(attempt.label, need)
        with self._lock:
            self._running.pop(id(attempt), None)
            for r in PACKED:
                self._free[r] += need[r]
            if not self._closed:
                self._schedule()
            self._lock.notify_all()
        if self._done is not None:
            self._done(attempt, outcome)

    def _capped(self, label: Mapping[str, float]) -> dict[str, float]:
        return {r: min(float(v), self.capacity.get(r, float(v))) for r, v in label.items()}


def run_attempt(fn: Callable, args: tuple, kwargs: dict, limits: Mapping[str, float], *,
                interval: float = 0.1, should_stop: Callable[[], bool] | None = None,
                isolate: bool | str = True) -> Outcome:
    """Run one call in lfm's isolated monitored process under ``limits`` and
    describe how it ended (see :func:`lfm.executors.runner.run_monitored`)."""
    from lfm.executors.runner import run_monitored
    return Outcome(**run_monitored(fn, args, kwargs, limits, interval=interval,
                                   should_stop=should_stop, isolate=isolate))
