"""A :class:`~lfm.monitor.spawner.Spawner` that forks each call's process
straight from the calling process (``run_call(..., isolate="fork")``).

The calling process plays the fork server's part itself: while it has calls
running it is a child subreaper (so what a call's process leaves when it
dies comes back to it, not to init), and it reaps the call's process and
kills what the call left behind. It stops being a subreaper when its last
call has been reaped, so that the orphans of unrelated processes (a program
it ran that left a server behind, say) do not pile up as its zombies. Meant
for a small, fresh, single-threaded process such as a Work Queue task's
runner: it saves starting a second interpreter, but its own memory is shared
with (and counted in) the call's process, as the fork server's is.
"""
from __future__ import annotations

import os
import signal
from _socket import socketpair
from _thread import allocate_lock

from lfm.monitor import procfs, reaping, worker
from lfm.monitor.spawner import Channel, Ended, Spawner

# the Work Queue runner imports this module in every task: no typing or socket
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket


class DirectFork(Spawner):
    """Forks call processes from this process (see the module doc)."""

    env = None  # the call's process inherits this process's environment
    name = "direct fork"

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.lock = allocate_lock()
        #: live call pid -> this process's children before that call started
        self.calls: dict[int, set[int]] = {}

    def alive(self) -> bool:
        return self.owner == os.getpid()

    def open_call(self, module: str, job: dict) -> socket.socket:  # noqa: ARG002
        """Fork the call's process holding ``job`` (nothing to pickle)."""
        mine, theirs = socketpair()
        parent = os.getpid()
        with self.lock:  # a call's "before" set must not miss a call forked meanwhile
            if not self.calls:
                worker.prctl(worker.PR_SET_CHILD_SUBREAPER, 1)
            older = procfs.child_pids(parent)
            pid = os.fork()
            if pid == 0:  # the call's process
                try:
                    mine.close()
                    os.setpgid(0, 0)
                    signal.signal(signal.SIGINT, signal.default_int_handler)
                    worker.prepare(parent, warm_up=False)
                finally:
                    worker.serve(theirs.detach(), parent, job)
            try:
                os.setpgid(pid, pid)
            except OSError:
                pass  # the child did it first (or already exited)
            self.calls[pid] = older
        theirs.close()
        return mine

    def reap(self, pid: int, channel: Channel, *, wait: bool) -> Ended | None:  # noqa: ARG002
        """Wait for the call's process to end (it does right after its outcome,
        or it was killed), kill its process group, reap it; after an abrupt
        end, kill what it left behind (:func:`lfm.monitor.reaping.reap_children`:
        this process's children but other calls' processes, those it had
        before the call and those in its own process group)."""
        try:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            reaping.kill_group(pid)  # the leader is an unreaped zombie: see kill_group
        except OSError:
            pass
        try:
            _, status, usage = os.wait4(pid, 0)
        except ChildProcessError:
            self._done(pid, abrupt=False)
            return None
        self._done(pid, abrupt=status != 0)
        return Ended.from_rusage(status, usage)

    def _done(self, pid: int, *, abrupt: bool) -> None:
        """Forget the reaped call ``pid``; after an abrupt end kill what it left."""
        with self.lock:
            older = self.calls.pop(pid, set())
            if abrupt:
                reaping.reap_children(older | set(self.calls), spare_own_group=True)
            if not self.calls:
                worker.prctl(worker.PR_SET_CHILD_SUBREAPER, 0)


_direct: DirectFork | None = None


def get() -> DirectFork:
    """This process's direct-fork spawner."""
    global _direct
    if _direct is None or not _direct.alive():
        _direct = DirectFork()
    return _direct
