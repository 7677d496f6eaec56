"""Isolated mode: run a call in its own process, forked from lfm's fork server
(or, with ``run_call(..., isolate="fork")``, straight from the caller; same
measurements, limits and clean-up).

The process layer, in three parts: how a call's process is made (a
:class:`~lfm.monitor.spawner.Spawner`: :mod:`~lfm.monitor.forkserver` or
:mod:`~lfm.monitor.directfork`), how it is supervised while it runs
(:mod:`~lfm.monitor.supervise`: sampling, limits, snapshots, kills), and how
its outcome is read (:mod:`~lfm.monitor.outcome`); what a call leaves behind
is killed by one rule (:mod:`~lfm.monitor.reaping`). This module puts them
together. Several threads may run calls concurrently: each call has its own
socket to its own process.

What the returned :class:`~lfm.Resources` mean in this mode:

``memory``
    peak resident memory (MB) of the call's process tree: the larger of (a) the
    call process's exact high-water mark (``VmHWM``, reset when the call starts)
    plus the largest peak of any descendant it reaped (``wait4`` rusage, so a
    child living 5 ms counts) and (b) the largest sum of high-water marks of the
    processes seen alive together by sampling (children running concurrently
    count as their sum). It includes the call process's interpreter (the fork
    server's few tens of MB) but never the caller's memory — except in
    ``"fork"`` mode, where the caller is the fork server and its (small)
    memory is the interpreter counted. It also includes what the function's
    module holds once imported (its import-time memory, resident in the call's
    process): the fork server imports that module once, before it forks call
    processes, so a call does not pay the import's time, but its memory is
    in every call's figure, as in a fresh process that imports the module to
    run the call (a Work Queue task); never another module's: each module
    has a fork server of its own (:mod:`~lfm.monitor.forkserver`). An error
    raised while importing it is the call's error: the call's process imports
    it again while loading the call and reports that exception (type,
    message, traceback).
``virtual_memory``
    peak virtual size (MB): ``VmPeak`` of the call process or the largest
    sampled sum over the tree.
``cpu_time``, ``cores``
    user + system seconds of the call and every descendant; ``cores`` =
    ``cpu_time / wall_time``.
``bytes_read``, ``bytes_written``
    MB passed through read()/write()-like calls by the tree (``rchar``/``wchar``,
    files, pipes and sockets alike).
``disk``
    peak space (MB) occupied in the call's own scratch area, as Work Queue
    means a task's disk: every call gets a fresh, empty scratch directory
    (mode 0700, in the caller's ``TMPDIR`` or ``/tmp``), exported in the
    call's process as ``TMPDIR`` (and ``tempfile.tempdir``, so ``tempfile``
    and the commands the call runs use it), and removed after the call
    however it ended (returned, raised, killed, exited). With ``workdir=``
    the given directory is measured instead, whole (what was in it before
    the call included, as Work Queue counts a sandbox's input files), and
    the scratch directory is made inside it. The area is walked (allocated
    blocks, hard links once: see :mod:`lfm.monitor.disk`) on the 50 ms
    sampling grid, less often when a walk is costly, and once more after the
    call's processes are gone: a file rewritten counts once, a deleted file
    frees its space, and a file living between two walks is missed.
    ``bytes_written`` is the separate count of bytes written.
``total_processes``
    processes seen: the call process, descendants sampled alive, and those
    killed when the call returned (a child living between two samples is
    missed by this count, though not by ``memory``).

``imports`` (an attribute, :attr:`lfm.Resources.imports`)
    the top-level modules outside the standard library (and other than lfm and
    cloudpickle, which every call's process has) present in the call's process
    when it ends that its interpreter did not have before it first imported
    lfm: one pass over ``sys.modules`` in the call's process. With the fork
    server this includes the function's module and what it imports (the server
    imports it in advance), and also the modules the server imported for other
    functions' modules before (a superset, never a subset, of what the call
    needs). With ``isolate="fork"`` it includes everything the forking process
    imported after lfm: exact in a fresh process such as the Work Queue
    runner, which loads the call and then forks it.

A call that raises a ``BaseException`` that is no ``Exception`` is reported
as :class:`lfm.CallExited` (``SystemExit``) or :class:`lfm.CallAborted`
(``KeyboardInterrupt``, ``GeneratorExit``, ...), never re-raised in the caller;
a call process that exits without an outcome (``os._exit(n)``) is
:class:`lfm.CallExited` with ``code`` its exit status.

A limit of the kernel's accounting: the rusage of a child that ran another
program (``exec``) keeps the resident size its parent had when it forked. So a
reaped child's peak is added to the call process's own only when it exceeds
the call process's peak (it then is the child's own); a smaller child counts
when sampling saw it alive (it lived longer than a sampling interval). A
command (``run_command``) that ends before the first sample is reported with
at least lfm's ~15 MB helper image.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from lfm.monitor import directfork, disk, outcome, supervise
from lfm.monitor import limits as limits_mod
from lfm.monitor.spawner import Unsendable
from lfm.resources import Resources, SerializationError

# the Work Queue runner imports this module in every task: keep typing,
# threading, pathlib and socket (its enums cost ~3 ms) out of its imports;
# the fork server's client (lfm.monitor.forkserver) is imported when needed
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

METHOD = outcome.METHOD


def execute(job: dict, *, label: str, limits: Mapping[str, float], include_root: bool = True,
            callback: Callable[[dict], Any] | None = None, interval: float = 1.0,
            keep_snapshots: bool = False, direct: bool = False,
            workdir: str | None = None) -> tuple[Any, Resources]:
    """Run ``job`` (``fn``, ``args``, ``kwargs``) in a new process and return
    ``(result, Resources)``; raises like :func:`lfm.monitor.run_call`.
    ``direct``: fork that process from this one
    (:class:`~lfm.monitor.directfork.DirectFork`) instead of from the fork
    server. ``workdir``: the directory whose occupancy is the call's
    ``disk`` (its scratch directory is made inside it); default: the
    scratch directory alone."""
    fn = job["fn"]
    module = getattr(getattr(fn, "__lfm_unwrapped__", fn), "__module__", None) or ""
    if direct:
        spawner, restart = directfork.get(), None
    else:
        from lfm.monitor import forkserver
        spawner = forkserver.get(module)   # one per module: it holds that module's imports alone

        def restart():  # a dead or wedged fork server is replaced once
            return forkserver.get(module, restart=True)
    env = None if direct else dict(os.environ)
    scratch = disk.make_scratch(workdir)
    job = {**job, "cwd": None if direct else os.getcwd(), "scratch": scratch,
           "env": None if env == spawner.env else env, "include_root": include_root}
    try:
        t0 = time.monotonic()
        started = time.time()
        try:
            channel, pid = supervise.start(spawner, restart, module, job)
        except Unsendable:
            raise SerializationError(f"cannot send {outcome.culprit(job, label)}") from None
        found = supervise.watch(
            channel, pid, spawner,
            disk.DiskSampler(workdir or scratch, min_interval=limits_mod.SAMPLE_INTERVAL),
            limits=limits, include_root=include_root, t0=t0, started=started,
            callback=callback, interval=interval, keep_snapshots=keep_snapshots)
    finally:
        disk.remove_scratch(scratch)
    result = outcome.load(found, label)
    res = outcome.resources(result, found, include_root)
    if callback is not None or keep_snapshots:
        final = {**res.to_dict(), "time": res.get("wall_time", 0.0), "final": True}
        if keep_snapshots:
            res.snapshots = [*found.snapshots, final]
        if callback is not None:
            callback(final)
    return outcome.finish(result, found, res, limits, label)
