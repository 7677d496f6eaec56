"""Small checks shared by every part of lfm: a positive number, a file that can
be written later, and reading an exact number of bytes from a stream or a socket.

Imported by the Work Queue runner on every task: no imports but ``math``.
"""
from __future__ import annotations

import math

# not typing.TYPE_CHECKING: importing typing costs each Work Queue task ~3 ms
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def positive(value: object, what: str, *, unit: str = "", allow_inf: bool = False) -> float:
    """``value`` as a float when it is a positive number (finite, unless
    ``allow_inf``); otherwise ValueError naming ``what`` and what was
    expected, e.g. "limit memory must be a positive number (MB), got -1". Booleans are refused (``True`` is no size); numpy scalars and
    other ``numbers.Real`` are accepted."""
    if isinstance(value, bool) or not _is_real(value):
        raise ValueError(f"{what} must be a number{_unit(unit)}, got {value!r}")
    number = float(value)
    if not number > 0:  # NaN too
        more = " (inf for no limit)" if allow_inf else ""
        raise ValueError(f"{what} must be a positive number{_unit(unit)}{more}, got {value!r}")
    if number == math.inf and not allow_inf:
        raise ValueError(f"{what} must be a finite positive number{_unit(unit)}, got {value!r}")
    return number


def writable_later(path: object, what: str) -> None:
    """Refuse now, with a ValueError naming ``what``, a file ``path`` whose
    directory does not exist, rather than after the work whose results it is to
    hold (a replay, a command, the calls of a trace)."""
    import os
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise ValueError(f"{what} {os.fspath(path)!r}: the directory {folder!r} does not exist")


def _unit(unit: str) -> str:
    return f" ({unit})" if unit else ""


def _is_real(value: object) -> bool:
    if isinstance(value, (int, float)):
        return True
    from numbers import Real  # here: numpy scalars and the like are rare, and every task imports this
    return isinstance(value, Real)


def read_exactly(readinto: Callable[[memoryview], int | None], size: int) -> bytearray | None:
    """Read exactly ``size`` bytes with ``readinto`` (a socket's ``recv_into``,
    a binary stream's ``readinto``) into a new buffer, looping over short
    reads; None when the stream ends first (a partial read is dropped: the
    peer went away mid-message)."""
    buf = bytearray(size)
    view = memoryview(buf)
    filled = 0
    try:
        while filled < size:
            got = readinto(view[filled:])
            if not got:
                return None
            filled += got
    finally:
        view.release()
    return buf
