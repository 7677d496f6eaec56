"""The fork server ("zygote"): a small, long-lived process that forks one process
per monitored call.

One zygote is started lazily per caller process and module of the functions
called (by :mod:`lfm.monitor.forkserver`) from a fresh interpreter, so its
resident memory is small and the caller's memory is never inherited by — or
charged to — a call. Forking it costs about a millisecond, far less than
starting an interpreter.

Protocol. The caller holds one end of a ``SOCK_SEQPACKET`` control socket. To
get a call process it creates a stream socket pair and sends one end in a
control message whose body names the module of the function to come (and
``sys.path`` when it changed). The zygote imports that module once, so later
processes don't pay for the import, and forks a call process on the socket
(:func:`lfm.monitor.worker.serve`), which writes its pid (``P`` frame) and waits
for its call; the caller keeps one such process ready in advance, so a call
does not wait for a fork. Once a call process has ended, the zygote kills what
is left of its process group (and, after an abrupt end, what it left behind:
:func:`lfm.monitor.reaping.reap_children`) and writes how it ended on its
socket (``X`` frame: an :class:`lfm.monitor.spawner.Ended`).

Module imports: the zygote imports the function's module once (its memory
is then part of every call process's, see :mod:`lfm.monitor.isolated`); an
error while importing it is not the zygote's to report: the call's process
imports the module again while loading the call and reports it as the
call's error.

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

import cloudpickle  # noqa: F401 - imported once here, not by every call process (wire imports it lazily)

from lfm.monitor import reaping, wire
from lfm.monitor.spawner import Ended
from lfm.monitor.worker import PR_SET_CHILD_SUBREAPER, prctl, prepare, serve


class Server:
    """State of the fork server; :meth:`run` is its loop."""

    def __init__(self, ctrl_fd: int) -> None:
        self.me = os.getpid()
        self.ctrl = socket.socket(fileno=ctrl_fd)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.selector = selectors.DefaultSelector()
        self.calls: dict[int, socket.socket] = {}       # pid -> call socket
        self.unsent: dict[int, tuple[socket.socket, bytes]] = {}
        self.imported: set[str] = set()

    def run(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # calls whose process died leave their descendants to us, not to init:
        # we reap them, and a kill of the call's process group still reaches them.
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)
        self.selector.register(self.ctrl, selectors.EVENT_READ, "ctrl")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "child")
        gc.freeze()
        try:
            while True:
                for key, _ in self.selector.select():
                    if key.data == "ctrl":
                        if not self._request():
                            return
                    elif key.data == "child":
                        try:
                            while os.read(self.wake_r, 4096):
                                pass
                        except BlockingIOError:
                            pass
                        self._reap()
                    else:  # a call socket became writable: flush its pending X frame
                        self._flush(key.data)
        finally:
            for pid in self.calls:
                reaping.kill_group(pid)  # our unreaped children: see kill_group

    def _in_child(self) -> None:
        """Drop the server's state in a newly forked call process."""
        self.selector.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.ctrl.close()
        for other in [*self.calls.values(), *(c for c, _ in self.unsent.values())]:
            other.close()
        os.setpgid(0, 0)

    def _request(self) -> bool:
        try:
            body, fds, _, _ = socket.recv_fds(self.ctrl, 1 << 20, 4)
        except OSError:
            return False
        if not body:
            for fd in fds:
                os.close(fd)
            return False
        module, path = pickle.loads(body)
        if path is not None:
            sys.path[:] = path
        if module and module not in self.imported and module != "__main__":
            self.imported.add(module)
            try:
                importlib.import_module(module)
            except BaseException:  # noqa: BLE001
                # Not swallowed: the import only saves calls its time. The call's
                # process imports the module again while unpickling the call and
                # sends that error back as the call's (type, message, traceback);
                # the server must not die of it (nor of a module's sys.exit).
                pass
            gc.freeze()
        conn_fd = fds[0]
        for fd in fds[1:]:
            os.close(fd)
        pid = os.fork()
        if pid == 0:
            self._in_child()
            try:
                prepare(self.me)
            finally:
                serve(conn_fd, self.me)
        _setpgid(pid)
        self.calls[pid] = socket.socket(fileno=conn_fd)
        return True

    def _reap(self) -> None:
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            pid = info.si_pid
            if pid in self.calls:
                reaping.kill_group(pid)  # an unreaped zombie: see kill_group
            try:
                _, status, usage = os.wait4(pid, 0)
            except ChildProcessError:
                continue
            conn = self.calls.pop(pid, None)
            if conn is None:
                continue  # an orphaned descendant of a dead call
            if status != 0:
                # what the call process left when it died came back to us:
                # every child of ours but the live call processes is its
                reaping.reap_children(set(self.calls))
            frame = wire.small_frame(b"X", tuple(Ended.from_rusage(status, usage)))
            self.unsent[pid] = (conn, frame)
            self._flush(pid)

    def _flush(self, pid: int) -> None:
        conn, frame = self.unsent[pid]
        try:
            sent = conn.send(frame, socket.MSG_DONTWAIT)
        except BlockingIOError:
            sent = 0
        except OSError:  # the caller went away
            sent = len(frame)
        if sent < len(frame):
            self.unsent[pid] = (conn, frame[sent:])
            try:
                self.selector.register(conn, selectors.EVENT_WRITE, pid)
            except KeyError:
                pass
            return
        del self.unsent[pid]
        try:
            self.selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        conn.close()


def _setpgid(pid: int) -> None:
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the child did it first (or already exited)


def main(ctrl_fd: int) -> None:
    """Run the fork server on the control socket ``ctrl_fd`` until it closes."""
    Server(ctrl_fd).run()


if __name__ == "__main__":
    main(int(sys.argv[1]))
