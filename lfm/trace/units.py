"""Unit conversions shared by the importers: sizes to MB, durations to seconds.

Sizes use binary multiples whatever the spelling (``KB``, ``kB``, ``KiB`` all
mean 1024 bytes, ``MB`` and ``MiB`` 2**20 bytes), as cctools, Work Queue and
Nextflow count them and as lfm's MB is defined (:data:`lfm.MB`).
"""
from __future__ import annotations

import math
import re

from lfm.resources import MB

#: Size unit (lower case) -> MB per unit.
SIZE_UNITS: dict[str, float] = {
    "b": 1 / MB, "byte": 1 / MB, "bytes": 1 / MB,
    "k": 1 / 1024, "kb": 1 / 1024, "kib": 1 / 1024,
    "m": 1.0, "mb": 1.0, "mib": 1.0,
    "g": 1024.0, "gb": 1024.0, "gib": 1024.0,
    "t": 1024.0 ** 2, "tb": 1024.0 ** 2, "tib": 1024.0 ** 2,
    "p": 1024.0 ** 3, "pb": 1024.0 ** 3, "pib": 1024.0 ** 3,
}

#: Duration unit (lower case) -> seconds per unit.
TIME_UNITS: dict[str, float] = {
    "us": 1e-6, "µs": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hours": 3600.0, "d": 86400.0, "days": 86400.0,
}

#: Count-like units: the value is taken as is.
PLAIN_UNITS = frozenset({"", "cores", "core", "procs", "processes", "files", "count", "%"})


def size_factor(unit: str) -> float | None:
    """MB per ``unit`` (e.g. ``"GB"`` -> 1024.0), None if not a size unit."""
    return SIZE_UNITS.get(unit.strip().lower())


def time_factor(unit: str) -> float | None:
    """Seconds per ``unit`` (e.g. ``"us"`` -> 1e-6), None if not a duration unit."""
    return TIME_UNITS.get(unit.strip().lower())


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|us|µs|d|h|m|s)(?![a-z])", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?(\d+(?:\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)")


def parse_duration(text: str, raw_unit: float = 1e-3) -> float:
    """Seconds in a duration such as ``"1h 2m 3s"``, ``"1m 3.5s"``, ``"450ms"``,
    ``"2d 4h"``; a bare number is in units of ``raw_unit`` seconds (Nextflow's
    raw traces: milliseconds). ValueError when it is neither.
    """
    text = text.strip()
    if _NUMBER.fullmatch(text):
        return _finite(float(text) * raw_unit, "duration", text)
    pos, total, found = 0, 0.0, False
    for match in _DURATION.finditer(text):
        if text[pos:match.start()].strip():
            break
        total += float(match.group(1)) * TIME_UNITS[match.group(2).lower()]
        pos, found = match.end(), True
    if not found or text[pos:].strip():
        raise ValueError(f"expected a duration like '1h 2m 3s', '450ms' or a number, got {text!r}")
    return _finite(total, "duration", text)


def parse_size(text: str, raw_unit: float = 1 / MB) -> float:
    """MB in a size such as ``"1.2 GB"``, ``"512 MB"``, ``"10 KB"``, ``"300 B"``;
    a bare number is in units of ``raw_unit`` MB (default: bytes). ValueError
    when it is neither.
    """
    text = text.strip()
    if _NUMBER.fullmatch(text):
        return _finite(float(text) * raw_unit, "size", text)
    match = _SIZE.fullmatch(text)
    factor = size_factor(match.group(2)) if match else None
    if factor is None:
        raise ValueError(f"expected a size like '1.2 GB', '512 MB' or a number of bytes, got {text!r}")
    return _finite(float(match.group(1)) * factor, "size", text)


def _finite(value: float, what: str, text: str) -> float:
    """``value``, or ValueError when it overflowed to infinity (``1e999``)."""
    if math.isinf(value):
        raise ValueError(f"expected a finite {what}, got {text!r}")
    return value
