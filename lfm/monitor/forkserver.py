"""The caller's side of lfm's fork servers (the server itself is
:mod:`lfm.monitor.zygote`): a :class:`~lfm.monitor.spawner.Spawner` that has
each call's process forked from a small interpreter, so the caller's memory is
never inherited by, or charged to, a call.

One fork server per module of the functions called (started on the first
call of a function of that module), because a server imports the module of
the functions it forks calls for and every call process it forks inherits
what is resident there: with one server for all, a call of ``sim.run`` would
be charged for whatever ``plots.draw``'s module imported (pandas, matplotlib)
once a call of that had run, and its measured memory would depend on which
other functions ran before it. Functions of ``__main__`` (sent by value, their
module never imported by a server) share one server. Beyond
:data:`MAX_SERVERS` modules, the calls of further modules share one server
too (each server is a process of its own, about 10 MB plus its module).

The Work Queue runner forks its calls directly and never imports this module.
"""
from __future__ import annotations

import atexit
import os
import pickle
import socket
import struct
import subprocess
import sys
import time
from _thread import allocate_lock

from lfm.monitor import wire
from lfm.monitor.spawner import Channel, Ended, Spawner, Unsendable

#: Seconds to wait for the server's report of how a killed call's process
#: ended (it kills and reaps it as soon as it dies).
KILL_GRACE = 10.0

#: Fork servers of one caller process, one per module; the modules beyond
#: these share one more server (see the module docstring).
MAX_SERVERS = 32


class ForkServer(Spawner):
    """Handle on one of this process's fork servers (one per module)."""

    name = "fork server"

    def __init__(self) -> None:
        self.owner = os.getpid()
        self.lock = allocate_lock()
        self.ctrl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
        code = (f"import sys; sys.path.insert(0, {root!r}); "
                f"from lfm.monitor.zygote import main; main({theirs.fileno()})")
        self.proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=[theirs.fileno()],
                                     stdin=subprocess.DEVNULL)
        theirs.close()
        self.sent_path: list[str] | None = None
        #: sockets of call processes forked in advance, waiting for a call
        self.ready: list[socket.socket] = []
        #: the environment the server started with (calls get it unless it changed)
        self.env = dict(os.environ)

    def alive(self) -> bool:
        return self.owner == os.getpid() and self.proc.poll() is None

    def _request(self, module: str) -> socket.socket:
        """Have the server fork a call process on a new socket (call with the
        lock held); the process sends its pid, then waits for a call."""
        mine, theirs = socket.socketpair()
        try:
            path = list(sys.path)
            body = pickle.dumps((module, None if path == self.sent_path else path))
            socket.send_fds(self.ctrl, [body], [theirs.fileno()])
            self.sent_path = path
        except OSError:
            mine.close()
            raise
        finally:
            theirs.close()
        return mine

    def open_call(self, module: str, job: dict) -> socket.socket | None:
        """Send the call to a ready call process, with this thread's current
        stdin/stdout/stderr and ``sys.path``, without waiting for it; a new
        process is requested for the next call, so a call does not wait for a
        fork."""
        try:
            chunks = wire.frames(b"C", wire.dumps(job))
        except Exception as exc:  # noqa: BLE001 - whatever pickling raises
            raise Unsendable(str(exc)) from None
        with self.lock:
            conn = None
            while self.ready and conn is None:
                conn = self.ready.pop()
                if not _fresh(conn):
                    conn.close()
                    conn = None
            try:
                if conn is None:
                    conn = self._request(module)
                self.ready.append(self._request(module))
            except OSError:
                if conn is not None:
                    conn.close()
                return None
        _send_call(conn, chunks)
        return conn

    def reap(self, pid: int, channel: Channel, *, wait: bool) -> Ended | None:
        """The server reaps the call's process (and kills what it left behind)
        and reports how it ended in an ``X`` frame: that report, waited for
        up to :data:`KILL_GRACE` s when ``wait``."""
        deadline = time.monotonic() + KILL_GRACE
        while wait and channel.ended is None and not channel.closed:
            if channel.wait(deadline - time.monotonic()):
                channel.read()
            elif time.monotonic() >= deadline:
                break
        return channel.ended

    def close(self) -> None:
        if self.owner != os.getpid():
            return
        for conn in self.ready:
            conn.close()
        self.ctrl.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _send_call(conn: socket.socket, chunks: list) -> None:
    """Send a call process this thread's stdin/stdout/stderr, ``sys.path`` and
    the call (``chunks``)."""
    header = pickle.dumps(sys.path)
    try:
        size = struct.pack("!I", len(header))
        try:
            socket.send_fds(conn, [size], [0, 1, 2])
        except OSError as exc:
            if isinstance(exc, (BrokenPipeError, ConnectionError)):
                raise
            socket.send_fds(conn, [size], [])  # stdio closed here: keep the server's
        conn.sendall(header)
        wire.send(conn, chunks)
    except OSError:
        pass  # the process died: the frames tell


def _fresh(conn: socket.socket) -> bool:
    """True unless a waiting call process is known to be dead (end of stream,
    or its exit already reported)."""
    try:
        data = conn.recv(1 << 16, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True  # nothing yet: its pid is still to come
    except OSError:
        return False
    if len(data) < wire.HEADER.size:
        return bool(data)
    kind, size = wire.HEADER.unpack_from(data)
    # alive: nothing after its pid frame (the server writes an exit frame after it)
    return kind == b"P" and len(data) <= wire.HEADER.size + size


#: this process's fork servers by module ("" for ``__main__`` and functions of no module)
_servers: dict[str, ForkServer] = {}
_server_lock = allocate_lock()
#: the key of the server that modules beyond MAX_SERVERS share
SHARED = "\0shared"


def get(module: str = "", restart: bool = False) -> ForkServer:
    """This process's fork server for the functions of ``module``, started
    (or, ``restart``, replaced) when needed."""
    key = "" if module in ("", "__main__") else module
    with _server_lock:
        if key not in _servers and len(_servers) >= MAX_SERVERS:
            key = SHARED
        server = _servers.get(key)
        if server is None or restart or not server.alive():
            _servers[key] = ForkServer()
            if server is not None and server.owner == os.getpid():
                server.close()
        return _servers[key]


def _after_fork_in_child() -> None:
    # a forked caller gets its own fork servers on first use; the parent's
    # handles (and a lock another thread may have held) must not be touched
    global _servers, _server_lock
    _servers = {}
    _server_lock = allocate_lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _shutdown() -> None:
    for server in list(_servers.values()):
        server.close()
