"""Inline mode: run a call in the caller's own process and thread.

Nearly free (a few tens of µs), but it measures the *process*: ``memory`` is the
peak resident memory of the whole caller process during the call, which includes
what the caller already held (compare with a no-op call to see the increase),
and ``cpu_time`` counts every thread of the process plus children reaped during
the call. Of the children, only the largest one reaped during the call is
added to the peak (concurrent children are not summed: use isolated mode).
Calls made inline from several threads at once see each other's use.
Limits cannot kill an inline call without killing the caller: they are checked
after it returns (``ResourceExhaustion`` then, with the result lost).
``disk`` is measured only with ``workdir=``: the peak occupancy of that
directory (see :mod:`lfm.monitor.disk`), walked by a helper thread on the
50 ms sampling grid and once after the call; the call gets no scratch
directory of its own (it runs in the caller's process, whose ``TMPDIR`` lfm
does not change).

How the peak is found, named by ``Resources.method``:

``clear_refs+VmHWM``
    the kernel's high-water mark is reset before the call (``5`` written to
    ``/proc/self/clear_refs``) and read after: exact.
``VmHWM``
    the reset is not permitted, but the call raised the process's lifetime peak,
    so the peak read after the call is the call's: exact.
``rss``
    the reset is not permitted and the call stayed below an earlier peak: the
    larger of the resident sizes before and after, a lower bound.
"""
from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from lfm.monitor import limits as limits_mod
from lfm.monitor import procfs
from lfm.monitor.disk import DiskSampler
from lfm.resources import Resources

#: Where the high-water mark is reset; a module attribute so a fallback can be exercised.
CLEAR_REFS = "/proc/self/clear_refs"

_SELF, _CHILDREN = resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN


class _SelfFiles:
    """This process's ``clear_refs`` and ``status``, kept open (re-opened after a
    fork: an open ``/proc/self`` file keeps pointing at the process that opened it)."""

    def __init__(self) -> None:
        self.pid = -1
        self.clear_fd = self.status_fd = -1
        self.lock = threading.Lock()

    def _open(self) -> None:
        with self.lock:
            if self.pid == os.getpid():
                return
            try:
                self.clear_fd = os.open(CLEAR_REFS, os.O_WRONLY)
            except OSError:
                self.clear_fd = -1
            self.status_fd = os.open("/proc/self/status", os.O_RDONLY)
            self.clear_path = CLEAR_REFS
            self.pid = os.getpid()

    def reset_hwm(self) -> bool:
        if self.pid != os.getpid() or self.clear_path != CLEAR_REFS:
            self.pid = -1
            self._open()
        if self.clear_fd < 0:
            return False
        try:
            os.write(self.clear_fd, b"5")
            return True
        except OSError:
            return False

    def memory(self) -> dict[str, float]:
        """``hwm``, ``rss``, ``vm_peak`` of this process in MB."""
        if self.pid != os.getpid():
            self._open()
        data = os.pread(self.status_fd, 8192, 0)
        out = {}
        for key, name in ((b"VmHWM:", "hwm"), (b"VmRSS:", "rss"), (b"VmPeak:", "vm_peak")):
            i = data.find(key)
            if i >= 0:
                out[name] = int(data[i + len(key):data.index(b"kB", i)]) / 1024
        return out


_self = _SelfFiles()
os.register_at_fork(after_in_child=lambda: setattr(_self, "lock", threading.Lock()))


class _Sampler(threading.Thread):
    """Periodic snapshots of this process while an inline call runs."""

    def __init__(self, interval: float, callback: Callable[[dict], Any] | None, keep: bool) -> None:
        super().__init__(daemon=True, name="lfm-inline-sampler")
        self.interval, self.callback, self.keep = interval, callback, keep
        self.snapshots: list[dict] = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        last_t, last_cpu = 0.0, _cpu()
        cpu0 = last_cpu
        while not self.stop.wait(self.interval):
            status = procfs.read_status("self") or {}
            now, cpu = time.monotonic() - self.t0, _cpu()
            snap = {"time": now, "memory": status.get("rss", 0.0),
                    "memory_peak": status.get("hwm", 0.0),
                    "virtual_memory": status.get("vm", 0.0), "cpu_time": cpu - cpu0,
                    "cores": max(0.0, (cpu - last_cpu) / (now - last_t)) if now > last_t else 0.0,
                    "processes": 1.0, "final": False}
            last_t, last_cpu = now, cpu
            if self.keep:
                self.snapshots.append(snap)
            if self.callback is not None:
                try:
                    self.callback(snap)
                except Exception:  # noqa: BLE001 - the call itself must not be disturbed
                    pass


def _cpu() -> float:
    a, b = resource.getrusage(_SELF), resource.getrusage(_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


class _DiskWatch(threading.Thread):
    """Walks ``workdir`` on the sampling grid while an inline call runs."""

    def __init__(self, workdir: str) -> None:
        super().__init__(daemon=True, name="lfm-inline-disk")
        self.disk = DiskSampler(workdir, min_interval=limits_mod.SAMPLE_INTERVAL)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(limits_mod.SAMPLE_INTERVAL):
            self.disk.sample()

    def peak(self) -> float:
        """Stop walking; the peak occupancy in MB, a last walk included."""
        self.stop.set()
        self.join()
        return self.disk.final()


def execute(fn: Callable, args: tuple, kwargs: Mapping[str, Any], *, label: str,
            limits: Mapping[str, float], callback: Callable[[dict], Any] | None = None,
            interval: float = 1.0, keep_snapshots: bool = False,
            workdir: str | None = None) -> tuple[Any, Resources]:
    """Run ``fn(*args, **kwargs)`` here and measure it; see the module doc.
    ``workdir``: the directory whose peak occupancy (MB) is ``disk``."""
    watch = None
    if workdir is not None:
        watch = _DiskWatch(workdir)
        watch.disk.sample()
        watch.start()
    sampler = None
    if callback is not None or keep_snapshots:
        sampler = _Sampler(interval, callback, keep_snapshots)
        sampler.start()
    before = None
    reset = _self.reset_hwm()
    if not reset:
        before = _self.memory()
    self0, kids0 = resource.getrusage(_SELF), resource.getrusage(_CHILDREN)
    start = time.time()
    t0 = time.perf_counter()
    error: BaseException | None = None
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - re-raised below, with resources attached
        error, result = exc, None
    wall = time.perf_counter() - t0
    self1, kids1 = resource.getrusage(_SELF), resource.getrusage(_CHILDREN)
    status = _self.memory()
    if reset:
        method, memory = "clear_refs+VmHWM", status.get("hwm")
    elif before and status.get("hwm", 0.0) > before.get("hwm", 0.0):
        method, memory = "VmHWM", status.get("hwm")
    else:
        method = "rss"
        memory = max((before or {}).get("rss", 0.0), status.get("rss", 0.0)) or None
    if memory is not None and kids1.ru_maxrss > kids0.ru_maxrss:
        memory += kids1.ru_maxrss / 1024  # a child reaped during the call set a new peak
    cpu = (self1.ru_utime + self1.ru_stime + kids1.ru_utime + kids1.ru_stime
           - self0.ru_utime - self0.ru_stime - kids0.ru_utime - kids0.ru_stime)
    values = {"memory": memory, "virtual_memory": status.get("vm_peak"),
              "cpu_time": max(0.0, cpu), "wall_time": wall, "start": start,
              "end": start + wall, "total_processes": 1.0}
    if watch is not None:
        values["disk"] = watch.peak()
    if wall > 0:
        values["cores"] = values["cpu_time"] / wall
    res = Resources(values, method=method)
    if sampler is not None:
        sampler.stop.set()
        sampler.join()
        final = {**res.to_dict(), "time": wall, "final": True}
        if keep_snapshots:
            res.snapshots = [*sampler.snapshots, final]
        if callback is not None:
            callback(final)
    if isinstance(error, SystemExit):
        # the call's own sys.exit: never stop the caller's program with it
        from lfm.resources import CallExited
        raise CallExited(f"{label} called sys.exit({error.code!r})", code=error.code,
                         exception=error, resources=res) from error
    if error is not None:
        # a KeyboardInterrupt here may be the caller's own Ctrl-C: re-raised as is
        try:
            error.lfm_resources = res  # type: ignore[attr-defined]
        except AttributeError:
            pass
        raise error
    limits_mod.raise_if_exceeded(res, limits, label,
                                 "inline calls cannot be killed, so this was found after it finished")
    return result, res
