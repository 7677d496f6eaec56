"""How a call's process is made: the protocol both spawners follow.

A spawner starts one process per call and, once it has ended, reaps it and
what it left behind (:mod:`lfm.monitor.reaping`'s rule). Two implement it:

:class:`lfm.monitor.forkserver.ForkServer`
    forks each call's process from lfm's fork server (a small interpreter
    started once per caller process); the server reaps it and reports how it
    ended in an ``X`` frame on the call's socket.
:class:`lfm.monitor.directfork.DirectFork`
    forks it straight from the calling process, which reaps it itself (for a
    small, fresh process such as a Work Queue task's runner).

Both give the supervisor (:mod:`lfm.monitor.supervise`) the same things: a
socket on which the call's process first writes its pid (``P`` frame), then
its outcome (``R``); and, from :meth:`Spawner.reap`, an :class:`Ended`.
"""
from __future__ import annotations

import select

from lfm.monitor import wire

# the Work Queue runner imports this module: no typing or socket at run time
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket


class Ended(tuple):
    """How a call's process ended: ``status`` (its wait status, as
    ``os.wait4`` gives it), ``cpu_time`` (s, user + system, of the process and
    the descendants it reaped) and ``maxrss`` (MB, the largest resident peak
    among the process and those descendants)."""

    __slots__ = ()

    def __new__(cls, status: int, cpu_time: float, maxrss: float) -> Ended:
        return tuple.__new__(cls, (status, cpu_time, maxrss))

    status = property(lambda self: self[0])
    cpu_time = property(lambda self: self[1])
    maxrss = property(lambda self: self[2])

    @classmethod
    def from_rusage(cls, status: int, usage: object) -> Ended:
        """From ``os.wait4``'s status and rusage."""
        return cls(status, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)

    def __reduce__(self):
        return (Ended, tuple(self))


class Unsendable(Exception):
    """The call cannot be sent to its process (it cannot be pickled)."""


class Channel:
    """The caller's end of one call: its socket and the frames read from it.
    :meth:`read` files them: ``outcome`` (the ``R`` frame, still pickled:
    body and buffers), ``ended`` (an ``X`` frame's :class:`Ended`), ``closed``
    (end of stream)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = wire.FrameReader()
        self.outcome: tuple[bytearray, list[bytearray]] | None = None
        self.ended: Ended | None = None
        self.pid: int | None = None

    @property
    def closed(self) -> bool:
        return self.reader.closed

    def read(self) -> None:
        """Read what is there without blocking and file the frames."""
        self.reader.read_from(self.sock)
        for kind, body, buffers in self.reader.messages:
            if kind == b"R":
                self.outcome = (body, buffers)
            elif kind == b"X":
                self.ended = Ended(*wire.load(body, buffers))
            elif kind == b"P":
                self.pid = wire.load(body, buffers)
        self.reader.messages.clear()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for something to read; True if there is."""
        return bool(select.select([self.sock], [], [], max(0.0, timeout))[0])

    def close(self) -> None:
        self.sock.close()


class Spawner:
    """What both spawners provide (see the module doc).

    ``env``: the environment a call's process starts with (None: the calling
    process's own, as a direct fork inherits it); a call sends its caller's
    environment only when it differs. ``name``: how it is reported."""

    env: dict[str, str] | None = None
    name = ""

    def open_call(self, module: str, job: dict) -> socket.socket | None:
        """Start a process for the call ``job`` (``fn``, ``args``, ``kwargs``
        and the call's settings), ``module`` being the function's module;
        return the caller's end of its socket (the pid comes first on it), or
        None when the spawner is gone. :class:`Unsendable` when ``job`` cannot
        be pickled (a spawner that needs to)."""
        raise NotImplementedError

    def reap(self, pid: int, channel: Channel, *, wait: bool) -> Ended | None:
        """The call's process ``pid`` has ended, or was killed: make sure it is
        reaped, with what it left behind, and say how it ended. ``wait``: the
        outcome did not come, so wait (a bounded time) until the end is known.
        None when it cannot be known (the fork server died)."""
        raise NotImplementedError

    def alive(self) -> bool:
        """False once this spawner can start no more calls here."""
        raise NotImplementedError
