"""Killing a call's processes, and the one rule for what a call leaves behind.

Kills go through pidfds (``os.pidfd_open`` + ``signal.pidfd_send_signal``,
Linux 5.3+): a pidfd names one process for good, so a pid that was reused by
an unrelated process since it was read is never signalled. A pid read some
time ago is checked against the start time read with it (``/proc/PID/stat``
field 22) after its pidfd is open: the pidfd then surely names the process
that was seen.

The rule, shared by the fork server, the direct fork and a call's own
process (:func:`reap_children`): after a call, kill only what that call
started. A call's process is a child subreaper, so everything the call
started is below it while it lives; when it dies abruptly, what it left is
re-parented to the process that forked it (also a subreaper), where it is
told from that process's other children: other calls' processes, children
it had before the call, and children in its own process group (the user's
own, e.g. a fork server) are spared.
"""
from __future__ import annotations

import os
import signal

from lfm.monitor import procfs

_pidfd_open = getattr(os, "pidfd_open", None)
_pidfd_send_signal = getattr(signal, "pidfd_send_signal", None)


def kill(pid: int, started: int | None = None, sig: int = signal.SIGKILL) -> bool:
    """Send ``sig`` to process ``pid`` through a pidfd; when ``started`` (its
    start time in clock ticks after boot, as :func:`lfm.monitor.procfs.read_stat`
    gives it) is given, only if ``pid`` still names the process that started
    then. True when sent. Without pidfds (a kernel older than 5.3) it falls
    back to ``os.kill`` after the same check, which leaves a window of a few
    microseconds for a pid reuse."""
    if _pidfd_open is None or _pidfd_send_signal is None:
        if started is not None and (procfs.read_stat(pid) or (0,) * 5)[4] != started:
            return False
        try:
            os.kill(pid, sig)
            return True
        except OSError:
            return False
    try:
        fd = _pidfd_open(pid)
    except OSError:
        return False  # gone (ESRCH), or not ours to signal
    try:
        if started is not None and (procfs.read_stat(pid) or (0,) * 5)[4] != started:
            return False  # a later process with the same pid: not the one seen
        _pidfd_send_signal(fd, sig)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def open_pidfd(pid: int) -> int | None:
    """A pidfd on ``pid`` (close it with ``os.close``), None when it cannot be
    had (gone, or no pidfds here)."""
    if _pidfd_open is None:
        return None
    try:
        return _pidfd_open(pid)
    except OSError:
        return None


def kill_by_pidfd(fd: int | None, pid: int, started: int | None,
                  sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` through ``fd`` (from :func:`open_pidfd`); without one (no
    pidfds here), as :func:`kill` does: to ``pid`` if it still started at
    ``started``."""
    if fd is None or _pidfd_send_signal is None:
        kill(pid, started, sig)
        return
    try:
        _pidfd_send_signal(fd, sig)
    except OSError:
        pass


def kill_group(leader: int) -> None:
    """SIGKILL the process group whose leader is ``leader`` (each call's process
    leads its own). Call only while ``leader`` is this process's child and not
    yet reaped (alive or a zombie): its pid is then still in use, so it cannot
    have been given to another process, and the group id names the call's
    group and no one else's. A pidfd names one process, not a group: this is
    the one kill here that does not go through a pidfd."""
    try:
        os.killpg(leader, signal.SIGKILL)
    except OSError:
        pass


def reap_children(spare: set[int] | frozenset[int] = frozenset(), *,
                  spare_own_group: bool = False) -> int:
    """Kill (SIGKILL) every child of this process, and all their descendants,
    except the children in ``spare`` (and, with ``spare_own_group``, those in
    this process's own process group), then reap them; repeated until none is
    left, since this process is a child subreaper and adopts the orphans of
    what it kills. Returns how many processes were killed. Cheap when this
    process has no child at all (one system call)."""
    try:  # any child at all, running or not yet reaped?
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return 0
    me = os.getpid()
    group = os.getpgrp() if spare_own_group else None
    killed = 0
    for _ in range(100):
        victims = [pid for pid in procfs.child_pids(me) if pid not in spare]
        if group is not None:
            victims = [pid for pid in victims if (procfs.read_stat(pid) or (0, group))[1] != group]
        if not victims:
            break
        for child in victims:
            # the whole tree below first: killed while it is still below us,
            # it cannot fork itself out of reach between two rounds
            for pid, _ in procfs.walk_down(child)[0]:
                stat = procfs.read_stat(pid)
                if stat is not None and kill(pid, stat[4]):
                    killed += 1
            if kill(child):  # our child, not reaped yet: its pid is its own
                killed += 1
        for child in victims:
            try:
                os.waitpid(child, 0)
            except ChildProcessError:
                pass  # reaped elsewhere (a fork server's SIGCHLD loop)
    return killed
