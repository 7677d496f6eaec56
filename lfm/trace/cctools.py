"""cctools resource_monitor summaries.

A summary is a JSON object, one per task, whose measured values carry their
unit as ``[value, "unit"]``::

    {"task_id": "17", "category": "sim", "exit_type": "normal", "exit_status": 0,
     "wall_time": [256.8, "s"], "cpu_time": [398.9, "s"], "cores": [2, "cores"],
     "cores_avg": [1.554, "cores"], "memory": [6202, "MB"], "disk": [35, "MB"], ...}

Accepted inputs: one summary per file (a ``.summary`` file, pretty-printed or
not), several summaries in one file, one per line or written back to back
(Work Queue's ``*.summaries``, in which an object without ``task_id`` is the
manager's own summary and is skipped), or a directory of ``.summary`` files
(read in name order). cctools' ``\\'`` escapes in strings (not valid JSON) are
accepted.

Conversion: sizes to MB (``B``, ``kB``/``KB``, ``MB``/``MiB``, ``GB``/``GiB``,
``TB``; binary multiples), times to s (``us`` as written by old monitors,
``ms``, ``s``, ``m``/``min``, ``h``), a bare number is taken as already in lfm
units; negative values (cctools' "not measured") become NaN. ``cores`` in lfm
is the average (cpu_time / wall_time), so it comes from ``cores_avg`` when
present, and the monitor's peak ``cores`` is kept as the ``cores_peak``
feature. Status: ``exhausted`` when ``limits_exceeded`` is non-empty or
``exit_type`` is ``limits`` (``exceeded`` lists the resources), ``error`` for
``exit_type`` ``signal`` or a non-zero ``exit_status``, else ``ok``. Features:
``task_id``, ``exit_status``, ``exit_type``, ``host``, ``exceeded``,
``cores_peak``. A summary without ``category`` gets the ``category`` option
(default ``"default"``, Work Queue's default category).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from lfm.trace.errors import TraceFormatError, describe
from lfm.trace.jsonstream import iter_json_values
from lfm.trace.frame import frame_from_rows
from lfm.trace.units import PLAIN_UNITS, SIZE_UNITS, TIME_UNITS, size_factor, time_factor

_SIZES = ("memory", "virtual_memory", "disk", "bytes_read", "bytes_written")
_TIMES = ("cpu_time", "wall_time", "start", "end")
_COUNTS = ("cores", "cores_avg", "total_processes")
EXIT_TYPES = ("normal", "signal", "limits")


def _unit_value(key: str, value: Any, path: str, where: int | str) -> float | None:
    """One measured value in lfm units (None when absent or negative)."""
    unit = ""
    if isinstance(value, list):
        if len(value) != 2 or not isinstance(value[1], str):
            raise TraceFormatError(path, where, f"expected {key!r} as a number or [value, \"unit\"], "
                                                f"got {describe(value)}")
        value, unit = value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TraceFormatError(path, where, f"expected a number for {key!r}, got {describe(value)}")
    if not math.isfinite(value):   # JSON readers accept Infinity, NaN and 1e999 (inf)
        raise TraceFormatError(path, where, f"expected a finite number for {key!r}, got {describe(value)}")
    if key in _SIZES:
        factor = size_factor(unit) if unit else 1.0
        if factor is None:
            raise TraceFormatError(path, where, f"expected a size unit ({', '.join(sorted(SIZE_UNITS))}) "
                                                f"for {key!r}, got {unit!r}")
    elif key in _TIMES:
        factor = time_factor(unit) if unit else 1.0
        if factor is None:
            raise TraceFormatError(path, where, f"expected a time unit ({', '.join(sorted(TIME_UNITS))}) "
                                                f"for {key!r}, got {unit!r}")
    else:
        if unit.lower() not in PLAIN_UNITS:
            raise TraceFormatError(path, where, f"expected a count unit ('cores', 'procs') for {key!r}, "
                                                f"got {unit!r}")
        factor = 1.0
    return None if value < 0 else float(value) * factor


def convert_resources(obj: dict[str, Any], path: str, where: int | str) -> tuple[dict[str, float], dict[str, float]]:
    """(lfm resources, extra numeric features) of a cctools resource dict.

    ``where`` is the line number (or JSON location) reported in errors.
    """
    values: dict[str, float] = {}
    for key in (*_SIZES, *_TIMES, *_COUNTS):
        if key in obj:
            number = _unit_value(key, obj[key], path, where)
            if number is not None:
                values[key] = number
    extras: dict[str, float] = {}
    if "cores_avg" in values:
        if "cores" in values:
            extras["cores_peak"] = values["cores"]
        values["cores"] = values.pop("cores_avg")
    return values, extras


def exceeded_names(obj: Any, path: str, where: int | str) -> list[str]:
    """Names of the resources in a ``limits_exceeded`` dict (empty for null/{})."""
    if obj is None:
        return []
    if not isinstance(obj, dict):
        raise TraceFormatError(path, where, f"expected 'limits_exceeded' as a JSON object, got {describe(obj)}")
    return [("cores" if k == "cores_avg" else k) for k in obj]


def summary_row(obj: Any, path: str, where: int | str, default_category: str) -> dict[str, Any]:
    """The trace row of one task summary."""
    if not isinstance(obj, dict):
        raise TraceFormatError(path, where, f"expected a JSON object (a task summary), got {describe(obj)}")
    category = obj.get("category", default_category)
    if not isinstance(category, str) or not category:
        raise TraceFormatError(path, where, f"expected 'category' as a non-empty string, got {describe(category)}")
    resources, extras = convert_resources(obj, path, where)
    exceeded = exceeded_names(obj.get("limits_exceeded"), path, where)
    exit_type = obj.get("exit_type", "normal")
    if exit_type not in EXIT_TYPES:
        raise TraceFormatError(path, where, f"expected 'exit_type' in {', '.join(EXIT_TYPES)}, got {describe(exit_type)}")
    exit_status = obj.get("exit_status")
    if exit_status is not None and (isinstance(exit_status, bool) or not isinstance(exit_status, int)):
        raise TraceFormatError(path, where, f"expected 'exit_status' as an integer, got {describe(exit_status)}")
    if exceeded or exit_type == "limits":
        status = "exhausted"
    elif exit_type == "signal" or (exit_status or 0) != 0:
        status = "error"
    else:
        status = "ok"
    row: dict[str, Any] = {"category": category, "status": status, **resources}
    if "task_id" in obj:
        row["task_id"] = obj["task_id"]
    row.update({"exit_status": exit_status, "exit_type": exit_type, "exceeded": exceeded})
    if "host" in obj:
        row["host"] = obj["host"]
    row.update(extras)
    return row


def _read_file(path: str, default_category: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8-sig") as stream:
        text = stream.read()
    if not text.strip():
        raise TraceFormatError(path, None, "expected a resource_monitor summary (JSON), got an empty file")
    values = list(iter_json_values(text, path))
    several = len(values) > 1
    return [summary_row(obj, path, line, default_category) for line, obj in values
            # in a file of several summaries, one without task_id is the manager's own
            if not (several and isinstance(obj, dict) and "task_id" not in obj)]


def read_cctools(path: str | os.PathLike, *, category: str = "default") -> pd.DataFrame:
    """Read resource_monitor summaries (file, JSON lines or directory) into a schema DataFrame."""
    path = os.fspath(path)
    if os.path.isdir(path):
        files = sorted(str(p) for p in Path(path).glob("*.summary"))
        if not files:
            raise TraceFormatError(path, None, "expected a directory holding *.summary files, found none")
        rows = [row for file in files for row in _read_file(file, category)]
    else:
        rows = _read_file(path, category)
    return frame_from_rows(rows)
