"""Accounting for the process tree that runs a call, by periodic sampling of /proc.

Sampling is only what catches *concurrent* use: two children alive together count
as the sum of their high-water marks. Exact peaks of single processes come from
the kernel (``VmHWM``, ``wait4`` rusage) and are combined with these samples by
the engines; a child that lives between two samples is still counted through the
rusage of reaped children.
"""
from __future__ import annotations

import time

from lfm.monitor import procfs


class TreeSampler:
    """Samples the living process tree under ``root`` (pid).

    With ``include_root=False`` the root itself is left out (``run_command``'s
    root is lfm's own helper process, not the user's command).

    The tree is found by walking down from ``root`` (see
    :func:`lfm.monitor.procfs.walk_down`), never by scanning every process
    of the machine where the kernel has children files.

    After each :meth:`sample`, these running figures hold (MB, s, counts):
    ``peak_memory`` (max over samples of the sum of the ``VmHWM`` of processes
    alive together), ``peak_virtual`` (max sum of virtual sizes), ``pids`` (every
    process seen), ``cpu_time`` (tree CPU time at the last sample, including
    children already reaped), ``io`` (``read``/``written`` totals at the last
    sample).
    """

    def __init__(self, root: int, *, include_root: bool = True) -> None:
        self.root = root
        self.include_root = include_root
        self.peak_memory = 0.0
        self.peak_virtual = 0.0
        self.pids: set[int] = set()
        self.cpu_time = 0.0
        self.io = {"read": 0.0, "written": 0.0}
        self.alive: list[int] = []
        #: pid -> its start time (clock ticks after boot), of every process
        #: seen: a kill is sent only to the process that had that pid then
        self.started: dict[int, int] = {}
        #: how the tree was found (:data:`~lfm.monitor.procfs.WALK_CHILDREN`,
        #: or :data:`~lfm.monitor.procfs.WALK_SCAN` where the kernel lacks
        #: children files)
        self.method = procfs.WALK_CHILDREN
        #: (epoch s at the sample, sum of VmHWM MB, sum of virtual MB) per sample
        self.history: list[tuple[float, float, float]] = []

    def peaks_until(self, end: float) -> tuple[float, float]:
        """Largest sampled (memory, virtual memory) sums among samples taken
        before ``end`` (epoch s): later ones may see the result being pickled."""
        memory = max((h for t, h, _ in self.history if t <= end), default=0.0)
        virtual = max((v for t, _, v in self.history if t <= end), default=0.0)
        return memory, virtual

    def sample(self) -> dict[str, float]:
        """Read the tree now; returns a snapshot dict (``memory`` current resident
        MB, ``memory_peak`` sum of high-water marks MB, ``virtual_memory`` MB,
        ``cpu_time`` s, ``processes`` alive, ``bytes_read``, ``bytes_written``
        MB)."""
        stamp = time.time()
        below, self.method = procfs.walk_down(self.root)
        parents = dict(below)
        members = [pid for pid, _ in below]
        if self.include_root:
            members.insert(0, self.root)
        statuses: dict[int, dict[str, float]] = {}
        rss = hwm = vm = cpu = 0.0
        io_sum = {"read": 0.0, "written": 0.0}
        alive: list[int] = []
        for pid in members:
            status = procfs.read_status(pid)
            stat = procfs.read_stat(pid)
            if status is None or stat is None:
                continue
            alive.append(pid)
            self.started[pid] = stat[4]
            statuses[pid] = status
            parent = parents.get(pid, -1)
            if parent == self.root and not self.include_root and parent not in statuses:
                statuses[parent] = procfs.read_status(parent) or {}
            # a vfork()ed child before its exec() shows its parent's memory,
            # which it shares: counting it would double the parent
            if not (status and status == statuses.get(parent)):
                rss += status.get("rss", 0.0)
                hwm += status.get("hwm", 0.0)
                vm += status.get("vm", 0.0)
            # own time plus what it reaped: a reaped child's time (and I/O)
            # moves into its parent's counters, so summing living (and zombie)
            # processes counts every finished descendant once.
            cpu += stat[2] + stat[3]
            io = procfs.read_io(pid)
            if io is not None:
                for key in io_sum:
                    io_sum[key] += io[key]
        self.alive = alive
        self.pids.update(alive)
        # running maxima: a sum can dip while a child is being reaped
        self.cpu_time = max(self.cpu_time, cpu)
        for key in self.io:
            self.io[key] = max(self.io[key], io_sum[key])
        self.peak_memory = max(self.peak_memory, hwm)
        self.peak_virtual = max(self.peak_virtual, vm)
        self.history.append((stamp, hwm, vm))
        return {"memory": rss, "memory_peak": hwm, "virtual_memory": vm,
                "cpu_time": self.cpu_time, "processes": float(len(alive)),
                "bytes_read": self.io["read"], "bytes_written": self.io["written"]}


class CoresWindow:
    """Average cores of the tree over a sliding window (for the ``cores`` limit)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._points: list[tuple[float, float]] = []

    def add(self, now: float, cpu_time: float) -> float | None:
        """Record a sample; returns the average cores over the last ``window``
        seconds, or None while less than a quarter window has been seen."""
        self._points.append((now, cpu_time))
        while len(self._points) > 2 and now - self._points[1][0] >= self.window:
            self._points.pop(0)
        t0, c0 = self._points[0]
        if now - t0 < self.window / 4:
            return None
        return max(0.0, (cpu_time - c0) / (now - t0))

