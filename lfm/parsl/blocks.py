"""Ending the blocks of ``lfm.parsl.WorkQueueExecutor`` for good.

Parsl's ``LocalProvider.cancel`` sends SIGTERM to a block's process group and
returns. A ``work_queue_worker -M PROJECT`` that is waiting for the catalog
(none reachable) sleeps through SIGTERM and would outlive ``cleanup()``. So
the processes of every local block being cancelled (its process group and
their descendants) are noted *before* the cancel, and those still alive
:data:`GRACE` seconds later are SIGKILLed. Other providers' jobs (Slurm,
Condor, ...) are ended by their scheduler and are left to it.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

from parsl.jobs.states import TERMINAL_STATES

log = logging.getLogger(__name__)

#: seconds between the provider's SIGTERM and lfm's SIGKILL of a local block
GRACE = 3.0


def local_block_processes(provider: Any, job_ids: Iterable[Any]) -> dict[Any, list]:
    """Per job id of a ``LocalProvider`` block: the ``psutil.Process`` objects
    of its process group (Parsl starts each block in a group of its own) and
    their descendants. Empty for any other provider, or a job already gone."""
    from parsl.providers import LocalProvider
    if not isinstance(provider, LocalProvider):
        return {}
    import psutil
    groups: dict[int, Any] = {}
    for job in job_ids:
        pid = (provider.resources.get(job) or {}).get("remote_pid")
        try:
            groups[os.getpgid(int(pid))] = job
        except (TypeError, ValueError, ProcessLookupError, PermissionError):
            continue
    found: dict[Any, list] = {job: [] for job in groups.values()}
    if not groups:
        return found
    for proc in psutil.process_iter():
        try:
            job = groups.get(os.getpgid(proc.pid))
            if job is not None:
                found[job] += [proc, *proc.children(recursive=True)]
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


class Reaper:
    """SIGKILLs, after a grace period, the processes of cancelled blocks that
    are still alive; one daemon thread per batch, so that Parsl's strategy
    thread is never held for the grace period."""

    def __init__(self, grace: float = GRACE) -> None:
        self.grace = float(grace)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def follow(self, processes: Iterable[Any]) -> None:
        """Kill whichever of ``processes`` (``psutil.Process``) outlive the grace."""
        procs = list({p.pid: p for p in processes}.values())
        if not procs:
            return
        thread = threading.Thread(target=self._reap, args=(procs,), name="lfm-parsl-reaper",
                                  daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for every batch followed so far (at most ``timeout`` seconds in all)."""
        import time
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)

    def _reap(self, procs: list) -> None:
        import psutil
        _, alive = psutil.wait_procs(procs, timeout=self.grace)
        if not alive:
            return
        log.info("lfm: SIGKILL for %d process(es) of cancelled blocks still alive %.0f s after "
                 "SIGTERM: %s", len(alive), self.grace, [p.pid for p in alive])
        for proc in alive:
            try:
                proc.kill()  # psutil checks the pid was not reused since it was noted
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=5)


class ReapingBlocks:
    """Mixin for a Parsl ``BlockProviderExecutor``: scale-in and
    :meth:`_cancel_blocks` (for shutdown) follow the provider's cancel of
    ``LocalProvider`` blocks with a :class:`Reaper`. Call
    ``ReapingBlocks.__init__`` from the executor's constructor, and
    ``self._reaper.join()`` before its shutdown returns."""

    def __init__(self) -> None:
        self._reaper = Reaper()

    def scale_in(self, blocks: int) -> list[str]:
        """Parsl's scale-in (cancel ``blocks`` active blocks), then SIGKILL
        for the processes of cancelled ``LocalProvider`` blocks still alive
        :data:`lfm.parsl.blocks.GRACE` seconds after the provider's SIGTERM."""
        noted = self._local_processes(self._live_blocks())
        killed = super().scale_in(blocks)
        self._reaper.follow(p for block in killed for p in noted.get(block, ()))
        return killed

    def _live_blocks(self) -> list[tuple[str, Any]]:
        """(block id, job id) of every block not in a terminal state."""
        return [(block, self.blocks_to_job_id[block]) for block, status in list(self._status.items())
                if status.state not in TERMINAL_STATES and block in self.blocks_to_job_id]

    def _local_processes(self, live: list[tuple[str, Any]]) -> dict[str, list]:
        """Per block id, the processes of a ``LocalProvider`` block (else nothing)."""
        by_job = local_block_processes(self.provider, [job for _, job in live])
        return {block: by_job.get(job, []) for block, job in live}

    def _cancel_blocks(self) -> None:
        live = self._live_blocks()
        if not live or self.provider is None:
            return
        noted = self._local_processes(live)
        try:
            self.provider.cancel([job for _, job in live])
        except Exception:
            log.exception("lfm WorkQueueExecutor %s: cancelling blocks %s failed", self.label,
                          [block for block, _ in live])
        self._reaper.follow(p for procs in noted.values() for p in procs)
