"""lfm's own trace format: JSON lines, one object per task attempt.

Each line of the file is one JSON object (UTF-8, ``\\n``-terminated) holding a
row of the trace schema (:mod:`lfm.trace.schema`)::

    {"category": "simulate", "status": "ok", "memory": 812.4, "cores": 1.31, "wall_time": 40.2, "task_id": 7}
    {"category": "simulate", "status": "exhausted", "memory": 1024.0, "alloc_memory": 1024.0, "exceeded": ["memory"]}

``category`` (non-empty string) and ``status`` (``ok``, ``exhausted`` or
``error``) are required; resource values are numbers in lfm units (MB, s,
cores) or ``null``/absent when not measured; ``alloc_<resource>`` keys hold
the allocation; any other key is a free-form feature column. Blank lines are
ignored. There is no header: a file whose first line is a JSON object with
``category`` and ``status`` keys is an lfm trace.

Appends are safe with several writers (threads or processes, on a local file
system): each row is written by one ``os.write`` of the whole line to a file
opened with ``O_APPEND``, under an exclusive ``flock``, so lines never
interleave or tear.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from lfm.trace.errors import TraceFormatError, describe
from lfm.trace.schema import ALLOC_PREFIX, RESOURCES, STATUSES

if TYPE_CHECKING:
    import pandas as pd


def _json_default(value: Any) -> Any:
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"value {describe(value)} of type {type(value).__name__} is not JSON-serialisable")


def _clean(value: Any) -> Any:
    """NaN floats -> None (JSON has no NaN), recursively in lists and dicts."""
    if isinstance(value, float) and math.isnan(value):  # numpy float64 is a float too
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def encode_row(row: Mapping[str, Any]) -> bytes:
    """The JSON line (with its newline) for one row; ValueError if it cannot be one."""
    if not isinstance(row, Mapping):
        raise TypeError(f"a trace row must be a mapping (see make_row), got {type(row).__name__}")
    if not isinstance(row.get("category"), str) or not row.get("category"):
        raise ValueError(f"a trace row needs a non-empty string 'category', got {describe(row.get('category'))}")
    if row.get("status") not in STATUSES:
        raise ValueError(f"a trace row needs 'status' in {', '.join(STATUSES)}, got {describe(row.get('status'))}")
    try:
        text = json.dumps(_clean(dict(row)), default=_json_default, allow_nan=False,
                          separators=(", ", ": "))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"trace row cannot be written as JSON: {exc}") from None
    return (text + "\n").encode("utf-8")


class Trace:
    """An lfm trace file (JSON lines, one row per task attempt).

    ``Trace(path)`` does not touch the file; the first append creates it.
    Use :func:`lfm.trace.make_row` to build rows.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)

    def __repr__(self) -> str:
        return f"Trace({self.path!r})"

    def __fspath__(self) -> str:
        return self.path

    def append(self, row: Mapping[str, Any]) -> None:
        """Append one row as one line; atomic with respect to other appenders."""
        self._write(encode_row(row))

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append several rows (each line is whole; the batch is written under one lock)."""
        data = b"".join(encode_row(row) for row in rows)
        if data:
            self._write(data)

    def _write(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(data)
            while view:  # a regular file takes it in one write; loop only for safety
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)  # closing releases the lock

    def read(self) -> pd.DataFrame:
        """The trace as a DataFrame in the schema (as ``read_trace(path)``, except
        that a file not written yet reads as an empty frame with the schema columns)."""
        if not os.path.exists(self.path) or os.path.getsize(self.path) == 0:
            from lfm.trace.frame import frame_from_rows
            return frame_from_rows([])
        return read_lfm(self.path)


def parse_row(obj: Any, path: str, lineno: int) -> dict[str, Any]:
    """Validate one decoded line of an lfm trace; TraceFormatError naming the line."""
    if not isinstance(obj, dict):
        raise TraceFormatError(path, lineno, f"expected a JSON object (one trace row), got {describe(obj)}")
    category = obj.get("category")
    if not isinstance(category, str) or not category:
        raise TraceFormatError(path, lineno, f"expected a non-empty string 'category', got {describe(category)}")
    status = obj.get("status")
    if status not in STATUSES:
        raise TraceFormatError(path, lineno, f"expected 'status' in {', '.join(STATUSES)}, got {describe(status)}")
    for key, value in obj.items():
        if key in RESOURCES or key.startswith(ALLOC_PREFIX):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise TraceFormatError(path, lineno, f"expected {key!r} to be a finite number >= 0 or null, "
                                                     f"got {describe(value)}")
    return obj


def read_lfm(path: str | os.PathLike) -> pd.DataFrame:
    """Read an lfm JSON-lines trace into a schema DataFrame."""
    from lfm.trace.frame import frame_from_rows  # here: writers need no pandas
    path = os.fspath(path)
    rows = []
    with open(path, encoding="utf-8") as stream:
        for lineno, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TraceFormatError(path, lineno, f"expected a JSON object, got invalid JSON "
                                                     f"({exc.msg} at column {exc.colno})") from None
            rows.append(parse_row(obj, path, lineno))
    return frame_from_rows(rows)
