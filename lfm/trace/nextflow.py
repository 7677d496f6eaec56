"""Nextflow trace files (``-with-trace``: ``trace.txt``, tab- or comma-separated).

Columns read (others are kept as features, ``-`` meaning missing):

=============  ===================  ==========================================
Nextflow       lfm column           conversion
=============  ===================  ==========================================
``process``    ``category``         (else ``name`` without its ``(tag)``)
``status``     ``status``           ``COMPLETED`` -> ok; ``FAILED``,
                                    ``ABORTED`` -> error; ``CACHED`` rows are
                                    left out (their numbers are an earlier
                                    run's, already counted there)
``peak_rss``   ``memory``           size -> MB
``peak_vmem``  ``virtual_memory``   size -> MB
``rchar``      ``bytes_read``       size -> MB
``wchar``      ``bytes_written``    size -> MB
``realtime``   ``wall_time``        duration -> s
``%cpu``       ``cores``            percent / 100; ``cpu_time`` = cores x wall_time
``start``,     ``start``, ``end``   epoch ms (raw) or ``YYYY-MM-DD HH:MM:SS[.mmm]``
``complete``                        (local time) -> epoch s
``cpus``       ``alloc_cores``      requested cores
``memory``     ``alloc_memory``     requested memory, size -> MB
``disk``       ``alloc_disk``       requested disk, size -> MB
``time``       ``alloc_wall_time``  requested time, duration -> s
=============  ===================  ==========================================

Feature: ``input_size`` (MB) = ``rchar``, the bytes the task read, as a proxy for
the size of its inputs (as Sizey, Bader et al. CLUSTER 2024, uses it). It is only
known after the task ran and includes everything read (libraries, references), so
it approximates what a user would know beforehand; a pipeline that records its
real input sizes should put them in an ``input_size`` column instead.

Sizes are raw bytes (``trace.raw = true``) or human-readable (``1.2 GB``,
``512 MB``, ``10 KB``; binary multiples); durations raw milliseconds or
human-readable (``1h 2m 3s``, ``1m 3.5s``, ``450ms``).
"""
from __future__ import annotations

import csv
import os
import re
from datetime import datetime
from typing import Any

import pandas as pd

from lfm.trace.errors import TraceFormatError, describe
from lfm.trace.frame import frame_from_rows
from lfm.trace.units import parse_duration, parse_size

#: Nextflow status -> lfm status (None: the row is left out).
STATUS_MAP: dict[str, str | None] = {"COMPLETED": "ok", "FAILED": "error", "ABORTED": "error", "CACHED": None}

_SIZES = {"peak_rss": "memory", "peak_vmem": "virtual_memory", "rchar": "bytes_read",
          "wchar": "bytes_written", "memory": "alloc_memory", "disk": "alloc_disk"}
_DURATIONS = {"realtime": "wall_time", "time": "alloc_wall_time"}
_TIMESTAMPS = {"start": "start", "complete": "end"}
_TAG = re.compile(r"\s*\(.*\)\s*$")
_PERCENT = re.compile(r"\s*([0-9.]+)\s*%?\s*")


def _timestamp(text: str) -> float:
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d*)?", text):
        return float(text) / 1000.0  # raw traces: epoch milliseconds
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"expected a timestamp like '2024-01-31 12:00:00.000' or epoch ms, got {text!r}") from None


def _convert(column: str, text: str) -> tuple[str, float]:
    """(lfm column, value) for one cell of a known column; ValueError on a bad value."""
    if column in _SIZES:
        return _SIZES[column], parse_size(text)
    if column in _DURATIONS:
        return _DURATIONS[column], parse_duration(text)
    if column in _TIMESTAMPS:
        return _TIMESTAMPS[column], _timestamp(text)
    if column == "%cpu":
        match = _PERCENT.fullmatch(text)
        if not match:
            raise ValueError(f"expected a CPU percentage like '180.5%', got {text!r}")
        return "cores", float(match.group(1)) / 100.0
    if column == "cpus":
        try:
            return "alloc_cores", float(text)
        except ValueError:
            raise ValueError(f"expected a number of cpus, got {text!r}") from None
    raise KeyError(column)


_KNOWN = set(_SIZES) | set(_DURATIONS) | set(_TIMESTAMPS) | {"%cpu", "cpus"}


def read_nextflow(path: str | os.PathLike) -> pd.DataFrame:
    """Read a Nextflow trace file into a schema DataFrame (see the module doc)."""
    path = os.fspath(path)
    with open(path, encoding="utf-8-sig", newline="") as stream:
        header_line = stream.readline()
        if not header_line.strip():
            raise TraceFormatError(path, 1, "expected a Nextflow trace header (task_id, name, status, ...), "
                                            "got an empty line")
        delimiter = "\t" if "\t" in header_line else ","
        header = [h.strip().lower() for h in next(csv.reader([header_line], delimiter=delimiter))]
        if "process" not in header and "name" not in header:
            raise TraceFormatError(path, 1, f"expected a 'process' or 'name' column, got {', '.join(header)}")
        if "status" not in header:
            raise TraceFormatError(path, 1, f"expected a 'status' column, got {', '.join(header)}")
        rows = []
        for lineno, fields in enumerate(csv.reader(stream, delimiter=delimiter), 2):
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise TraceFormatError(path, lineno, f"expected {len(header)} fields like the header, "
                                                     f"got {len(fields)} (truncated line?)")
            cells = dict(zip(header, (f.strip() for f in fields)))
            row = _row(cells, path, lineno)
            if row is not None:
                rows.append(row)
    return frame_from_rows(rows)


def _row(cells: dict[str, str], path: str, lineno: int) -> dict[str, Any] | None:
    status_text = cells["status"].upper()
    if status_text not in STATUS_MAP:
        raise TraceFormatError(path, lineno, f"expected status {', '.join(STATUS_MAP)}, "
                                             f"got {describe(cells['status'])}")
    status = STATUS_MAP[status_text]
    if status is None:
        return None
    category = cells.get("process") or _TAG.sub("", cells.get("name", ""))
    if not category or category == "-":
        raise TraceFormatError(path, lineno, "expected a process name, got an empty cell")
    row: dict[str, Any] = {"category": category, "status": status}
    for column, text in cells.items():
        if column in ("process", "status"):
            continue
        if column not in _KNOWN:
            row[column] = None if text in ("-", "") else text
            continue
        if text in ("-", ""):
            continue
        try:
            name, value = _convert(column, text)
        except ValueError as exc:
            raise TraceFormatError(path, lineno, f"{exc} (column {column!r})") from None
        row[name] = value
    if "cores" in row and "wall_time" in row:
        row["cpu_time"] = row["cores"] * row["wall_time"]
    if "bytes_read" in row and "input_size" not in cells:
        row["input_size"] = row["bytes_read"]
    return row
