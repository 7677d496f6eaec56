"""The fork server ("zygote"): a small, long-lived process that forks one process
per monitored call.

One zygote is started lazily per caller process (by :mod:`lfm.monitor.isolated`)
from a fresh interpreter, so its resident memory is small and the caller's memory
is never inherited by — or charged to — a call. Forking it costs about a
millisecond, far less than starting an interpreter.

Protocol. The caller holds one end of a ``SOCK_SEQPACKET`` control socket. For
each call it creates a stream socket pair and sends one end, plus its current
stdin/stdout/stderr, in one control message whose body names the module of the
function (and ``sys.path`` when it changed). The zygote imports that module
once, so later forks don't pay for the import, forks the call's process, writes
its pid (``P`` frame) on the call socket, and, once the process has ended, kills
what is left of its process group and writes how it ended (``X`` frame: wait
status and rusage of the process and the descendants it reaped).

The zygote exits, killing every running call, when the caller's end of the
control socket closes (the caller exited or died).
"""
from __future__ import annotations

import gc
import importlib
import os
import pickle
import selectors
import signal
import socket
import sys

from lfm.monitor import procfs, wire
from lfm.monitor.worker import PR_SET_CHILD_SUBREAPER, prctl, serve


def main(ctrl_fd: int) -> None:
    """Run the fork server on the control socket ``ctrl_fd`` until it closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # calls whose process died leave their descendants to us, not to init: we
    # reap them, and the caller's kill of the process group still reaches them.
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    ctrl = socket.socket(fileno=ctrl_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    selector = selectors.DefaultSelector()
    selector.register(ctrl, selectors.EVENT_READ, "ctrl")
    selector.register(wake_r, selectors.EVENT_READ, "child")
    calls: dict[int, socket.socket] = {}
    unsent: dict[int, tuple[socket.socket, bytes]] = {}
    imported: set[str] = set()
    gc.freeze()
    me = os.getpid()
    try:
        while True:
            for key, _ in selector.select():
                if key.data == "ctrl":
                    if not _accept(ctrl, calls, unsent, imported, me, selector, wake_r, wake_w):
                        return
                elif key.data == "child":
                    try:
                        while os.read(wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    _reap(calls, unsent, selector)
                else:  # a call socket became writable: flush its pending X frame
                    pid = key.data
                    _flush(pid, unsent, selector)
    finally:
        for pid in list(calls):
            _killpg(pid)


def _accept(ctrl, calls, unsent, imported, me, selector, wake_r, wake_w) -> bool:
    try:
        body, fds, _, _ = socket.recv_fds(ctrl, 1 << 20, 4)
    except OSError:
        return False
    if not body:
        for fd in fds:
            os.close(fd)
        return False
    module, path = pickle.loads(body)
    if path is not None:
        sys.path[:] = path
    if module and module not in imported and module != "__main__":
        imported.add(module)
        try:
            importlib.import_module(module)
        except BaseException:  # noqa: BLE001 - the call's process reports the error
            pass
        gc.freeze()
    conn_fd, stdio = fds[0], fds[1:]
    pid = os.fork()
    if pid == 0:
        try:
            selector.close()
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            os.close(wake_r)
            os.close(wake_w)
            ctrl.close()
            for other in [*calls.values(), *(c for c, _ in unsent.values())]:
                other.close()
            os.setpgid(0, 0)
        finally:
            serve(conn_fd, stdio, me)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the child did it first (or already exited)
    for fd in stdio:
        os.close(fd)
    conn = socket.socket(fileno=conn_fd)
    calls[pid] = conn
    try:
        conn.send(wire.small_frame(b"P", pid), socket.MSG_DONTWAIT)
    except OSError:
        pass
    return True


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _reap(calls, unsent, selector) -> None:
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None:
            return
        pid = info.si_pid
        if pid in calls:
            # the process is a zombie, so its pid (= its group id) cannot be
            # reused yet: killing the group now cannot hit a stranger.
            _killpg(pid)
        try:
            _, status, usage = os.wait4(pid, 0)
        except ChildProcessError:
            continue
        conn = calls.pop(pid, None)
        if conn is None:
            continue  # an orphaned descendant of a dead call
        if status != 0:
            _kill_orphans(calls)
        frame = wire.small_frame(b"X", {
            "status": status, "cpu_time": usage.ru_utime + usage.ru_stime,
            "maxrss": usage.ru_maxrss / 1024})
        unsent[pid] = (conn, frame)
        _flush(pid, unsent, selector)


def _kill_orphans(calls) -> None:
    """Kill our children that are not calls: descendants of a call's process that
    died abruptly were re-parented to us (we are their subreaper)."""
    for pid in descendants_of_self(depth_one=True):
        if pid not in calls:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def descendants_of_self(depth_one: bool = False) -> list[int]:
    me = os.getpid()
    parents = procfs.all_parents()
    if depth_one:
        return [pid for pid, ppid in parents.items() if ppid == me]
    return procfs.descendants(me, parents)


def _flush(pid, unsent, selector) -> None:
    conn, frame = unsent[pid]
    try:
        sent = conn.send(frame, socket.MSG_DONTWAIT)
    except BlockingIOError:
        sent = 0
    except OSError:  # the caller went away
        sent = len(frame)
    if sent < len(frame):
        unsent[pid] = (conn, frame[sent:])
        try:
            selector.register(conn, selectors.EVENT_WRITE, pid)
        except KeyError:
            pass
        return
    del unsent[pid]
    try:
        selector.unregister(conn)
    except (KeyError, ValueError):
        pass
    conn.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
