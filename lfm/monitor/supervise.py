"""Supervising a call's process while it runs: sampling, limits, snapshots.

The caller's thread sends the call through a spawner, then waits for the
outcome while sampling the call's process tree (and walking its disk area)
every :data:`~lfm.monitor.limits.SAMPLE_INTERVAL` seconds. It reads as it
waits, so a result of any size cannot deadlock on a full pipe. A breached
limit kills the call's process and every descendant sampling saw, through
pidfds (:mod:`lfm.monitor.reaping`); the spawner then kills its process
group and what it left behind.
"""
from __future__ import annotations

import math
import os
import select
import time
from collections.abc import Callable, Mapping

from lfm.monitor import limits as limits_mod
from lfm.monitor import procfs, reaping
from lfm.monitor.disk import DiskSampler
from lfm.monitor.spawner import Channel, Ended, Spawner
from lfm.monitor.tree import CoresWindow, TreeSampler
from lfm.resources import MonitorError

# the Work Queue runner imports this module in every task: no typing at run time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Seconds to wait for a call's process to start (the fork server may be
#: importing the function's module) before the server is replaced.
START_TIMEOUT = 120.0


class Watched:
    """What supervising one call found: ``outcome`` (the pickled ``R`` frame,
    or None), ``ended`` (:class:`~lfm.monitor.spawner.Ended` or None),
    ``breached`` (resource -> limit), ``sampler`` (the
    :class:`~lfm.monitor.tree.TreeSampler`), ``disk`` (peak occupancy, MB),
    ``started`` (epoch s), ``elapsed`` (s), ``snapshots``."""

    __slots__ = ("outcome", "ended", "breached", "sampler", "disk", "started", "elapsed",
                 "snapshots")


def start(spawner: Spawner, restart: Callable[[], Spawner] | None, module: str,
          job: dict) -> tuple[Channel, int]:
    """Open the call through ``spawner`` and wait for its process's pid;
    ``restart`` gives a new spawner when this one died or is wedged (tried
    once). MonitorError when no process could be started."""
    wedged = False
    for attempt in range(2):
        if attempt:
            if restart is None:
                break
            spawner = restart()
        sock = spawner.open_call(module, job)
        if sock is None:
            continue
        sock.setblocking(True)
        channel = Channel(sock)
        deadline = time.monotonic() + START_TIMEOUT
        wedged = False
        while channel.pid is None and not channel.closed:
            if not channel.wait(deadline - time.monotonic()):
                wedged = True
                break  # a wedged fork server: replace it
            channel.read()
        if channel.pid is not None:
            return channel, channel.pid
        channel.close()
    if wedged:
        if restart is not None:
            restart()   # the stuck server is stopped; the next call of the module gets a fresh one
        raise MonitorError(f"lfm could not start the call's process: its {spawner.name} did not fork it within "
                           f"{START_TIMEOUT:g} s, twice (is importing the function's module {module!r} stuck?)")
    raise MonitorError(f"lfm could not start the call's process (its {spawner.name} died)")


def watch(channel: Channel, pid: int, spawner: Spawner, disk: DiskSampler, *,
          limits: Mapping[str, float], include_root: bool, t0: float, started: float,
          callback: Callable[[dict], Any] | None, interval: float,
          keep_snapshots: bool) -> Watched:
    """Wait for the call's outcome while enforcing ``limits`` and taking
    snapshots; then have the spawner reap the process. ``t0``: monotonic
    time of the start."""
    sampler = TreeSampler(pid, include_root=include_root)
    pidfd = reaping.open_pidfd(pid)
    # without pidfds (Linux < 5.3) a kill checks the start time read now
    root_started = None if pidfd is not None else (procfs.read_stat(pid) or (None,) * 5)[4]
    breached: dict[str, float] = {}
    snapshots: list[dict] = []
    killed = False
    want_snaps = callback is not None or keep_snapshots
    try:
        poller = select.poll()
        poller.register(channel.sock, select.POLLIN)
        deadline = t0 + limits["wall_time"] if "wall_time" in limits else math.inf
        cores_window = CoresWindow(limits_mod.CORES_WINDOW) if "cores" in limits else None
        next_sample = t0 + limits_mod.SAMPLE_INTERVAL
        next_snap = t0 + interval
        last_snap = (0.0, 0.0)
        while not breached:
            now = time.monotonic()
            wake = min(next_sample, deadline)
            # frames may already be waiting (read along with the pid)
            if channel.reader.messages or poller.poll(max(0.0, (wake - now) * 1000.0)):
                channel.read()
                # the outcome holds the exact measurement: no need to wait
                # for the process's exit (which a fork server reports later)
                if channel.outcome is not None or channel.ended is not None or channel.closed:
                    break
            now = time.monotonic()
            if now >= deadline:
                breached["wall_time"] = limits["wall_time"]
            if now >= next_sample:
                next_sample = now + limits_mod.SAMPLE_INTERVAL
                snap = sampler.sample()
                snap["disk"] = disk.sample(now)
                breached.update(_breaches(snap, limits, cores_window, now))
                if want_snaps and now >= next_snap:
                    elapsed = now - t0
                    dt = elapsed - last_snap[0]
                    snap["cores"] = max(0.0, (snap["cpu_time"] - last_snap[1]) / dt) if dt > 0 else 0.0
                    snap.update(time=elapsed, final=False)
                    last_snap = (elapsed, snap["cpu_time"])
                    next_snap = now + interval
                    if keep_snapshots:
                        snapshots.append(snap)
                    if callback is not None:
                        callback(snap)
        if breached:
            killed = True
            _kill(pidfd, pid, root_started, sampler)
    finally:
        if not killed and channel.outcome is None and channel.ended is None:
            killed = True
            _kill(pidfd, pid, root_started, sampler)  # interrupted, or a callback raised
        if pidfd is not None:
            os.close(pidfd)
        ended: Ended | None = None
        try:
            ended = spawner.reap(pid, channel, wait=channel.outcome is None or killed)
        finally:
            channel.close()
    found = Watched()
    found.outcome = None if breached else channel.outcome
    found.ended, found.breached, found.sampler = ended, breached, sampler
    found.elapsed = time.monotonic() - t0
    found.started, found.snapshots = started, snapshots
    found.disk = disk.final()  # the call's processes are gone: nothing grows it now
    return found


def _kill(pidfd: int | None, pid: int, started: int | None, sampler: TreeSampler) -> None:
    """Kill the call's process through its pidfd (opened when its pid came),
    and every descendant that sampling saw alive (those that left its process
    group included) unless its pid now names another process."""
    reaping.kill_by_pidfd(pidfd, pid, started)
    for other in sampler.alive:
        if other != pid:
            reaping.kill(other, sampler.started.get(other))


def _breaches(snap: dict, limits: Mapping[str, float], cores_window: CoresWindow | None,
              now: float) -> dict[str, float]:
    found = {}
    for name, key in (("memory", "memory_peak"), ("virtual_memory", "virtual_memory"),
                      ("disk", "disk")):
        if name in limits and snap[key] > limits[name]:
            found[name] = limits[name]
    if cores_window is not None:
        cores = cores_window.add(now, snap["cpu_time"])
        if cores is not None and cores > limits["cores"] + limits_mod.CORES_TOLERANCE:
            found["cores"] = limits["cores"]
    return found
