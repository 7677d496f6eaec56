"""Framing of the messages between the caller, the fork server and a call's process.

A frame is a 1-byte kind, an 8-byte big-endian length, then the body. Objects are
pickled with cloudpickle (protocol 5); large buffers (numpy arrays, ``PickleBuffer``)
travel out of band as separate ``B`` frames right after their ``kind`` frame, so a
100 MB array is never copied into the pickle stream.

Kinds: ``P`` the call's pid (call process -> caller), ``C`` the call (caller ->
call process), ``R`` the outcome (call process -> caller), ``X`` how the call's
process ended (fork server -> caller), ``B`` an out-of-band buffer.
"""
from __future__ import annotations

import pickle
import struct
from _socket import MSG_DONTWAIT

from lfm.checks import read_exactly

# not typing.TYPE_CHECKING: importing typing costs each Work Queue task ~3 ms
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from typing import Any

HEADER = struct.Struct("!cQ")


def dumps(obj: Any, by_reference: bool = False) -> list[bytes | memoryview]:
    """Pickle ``obj``; returns [pickle stream, out-of-band buffers...].

    ``by_reference``: try the standard pickler first, and cloudpickle only when
    it fails. Meant for outcomes going back to the caller, where it is exact:
    the standard pickler refers to a class or function by name only when that
    name finds the very same object here, and whatever cloudpickle sent by value
    (e.g. from the caller's ``__main__``) is found under no name here, so it
    fails and goes by value again. It spares a short call's process importing
    cloudpickle (~15 ms).
    """
    buffers: list[pickle.PickleBuffer] = []
    if by_reference:
        try:
            data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
            return [data, *(b.raw() for b in buffers)]
        except Exception:  # noqa: BLE001 - anything the standard pickler refuses
            buffers.clear()
    import cloudpickle  # here: importing it costs a short-lived process ~15 ms
    data = cloudpickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return [data, *(b.raw() for b in buffers)]


def to_bytes(obj: Any) -> bytes:
    """``obj`` as one pickle stream (in band), by reference first as
    :func:`dumps` with ``by_reference``; for a file read with ``pickle.load``."""
    try:
        return pickle.dumps(obj, protocol=5)
    except Exception:  # noqa: BLE001
        import cloudpickle
        return cloudpickle.dumps(obj, protocol=5)


def frames(kind: bytes, parts: list[bytes | memoryview]) -> list[bytes | memoryview]:
    """The byte chunks to send for ``parts`` (from :func:`dumps`) as ``kind``.
    The pickle frame's body starts with the number of out-of-band buffers."""
    head = struct.pack("!I", len(parts) - 1)
    out: list[bytes | memoryview] = [HEADER.pack(kind, len(head) + len(parts[0])), head, parts[0]]
    for buf in parts[1:]:
        out.append(HEADER.pack(b"B", buf.nbytes if isinstance(buf, memoryview) else len(buf)))
        out.append(buf)
    return out


def send(sock: socket.socket, chunks: list[bytes | memoryview]) -> None:
    """Send chunks in order (blocking), merging small ones to save system calls."""
    pending = bytearray()
    for chunk in chunks:
        size = chunk.nbytes if isinstance(chunk, memoryview) else len(chunk)
        if size < 65536:
            pending += chunk
            continue
        if pending:
            sock.sendall(pending)
            pending = bytearray()
        sock.sendall(chunk)
    if pending:
        sock.sendall(pending)


def small_frame(kind: bytes, obj: Any) -> bytes:
    """One frame holding a small object pickled in band (no out-of-band buffers)."""
    body = struct.pack("!I", 0) + pickle.dumps(obj, protocol=5)
    return HEADER.pack(kind, len(body)) + body


class FrameReader:
    """Incremental reader: feed it from a socket, get complete messages back.

    A message is ``(kind, object)``; a pickled frame followed by its out-of-band
    buffers is reassembled and unpickled lazily by :meth:`load`.
    """

    def __init__(self) -> None:
        self._header = bytearray()
        self._body: bytearray | None = None
        self._filled = 0
        self._kind = b""
        self._pending: tuple[bytes, bytearray, int, list[bytearray]] | None = None
        self.messages: list[tuple[bytes, bytearray, list[bytearray]]] = []
        self.closed = False

    def read_from(self, sock: socket.socket) -> None:
        """Read all that is available now without blocking; sets ``closed`` at EOF."""
        while True:
            try:
                if self._body is None:
                    chunk = sock.recv(HEADER.size - len(self._header), MSG_DONTWAIT)
                    if not chunk:
                        self.closed = True
                        return
                    self._header += chunk
                    if len(self._header) == HEADER.size:
                        self._kind, size = HEADER.unpack(self._header)
                        self._header = bytearray()
                        self._body = bytearray(size)
                        self._filled = 0
                        if size == 0:
                            self._complete()
                    continue
                view = memoryview(self._body)[self._filled:]
                got = sock.recv_into(view, len(view), MSG_DONTWAIT)
                view.release()
                if got == 0:
                    self.closed = True
                    return
                self._filled += got
                if self._filled == len(self._body):
                    self._complete()
            except (BlockingIOError, InterruptedError):
                return
            except (ConnectionResetError, BrokenPipeError):
                self.closed = True
                return

    def _complete(self) -> None:
        body, kind = self._body, self._kind
        self._body = None
        if kind == b"B":
            assert self._pending is not None, "buffer frame without a message"
            pkind, pbody, missing, bufs = self._pending
            bufs.append(body)
            missing -= 1
            self._pending = (pkind, pbody, missing, bufs)
        else:
            (missing,) = struct.unpack_from("!I", body)
            self._pending = (kind, body, missing, [])
        if self._pending[2] == 0:
            pkind, pbody, _, bufs = self._pending
            self._pending = None
            self.messages.append((pkind, pbody, bufs))


def load(body: bytearray, buffers: list[bytearray]) -> Any:
    """Unpickle a message body read by :class:`FrameReader` or :func:`read_message`."""
    return pickle.loads(memoryview(body)[4:], buffers=buffers)


def read_message(sock: socket.socket) -> tuple[bytes, bytearray, list[bytearray]] | None:
    """Blocking read of one complete message; None at end of stream."""
    def exact(size: int) -> bytearray | None:
        return read_exactly(sock.recv_into, size)

    def frame() -> tuple[bytes, bytearray] | None:
        """One header and the payload it announces."""
        header = exact(HEADER.size)
        if header is None:
            return None
        kind, size = HEADER.unpack(header)
        payload = exact(size)
        return None if payload is None else (kind, payload)

    first = frame()
    if first is None:
        return None
    kind, body = first
    (count,) = struct.unpack_from("!I", body)
    buffers = []
    for _ in range(count):
        buffer = frame()
        if buffer is None:
            return None
        buffers.append(buffer[1])
    return kind, body, buffers
