"""The resource files of the WORKS'21 k-means bucketing artifact (``resources_all.txt``).

Phung et al., "Not All Tasks Are Created Equal: Adaptive Resource Allocation for
Heterogeneous Tasks in Dynamic Workflows" (WORKS 2021) distribute, per workflow, a
``resources_all.txt`` made from cctools resource_monitor summaries: a header line,
then one task per line, fields separated by `` -- ``::

    taskid -- core -- memory -- virtual_memory -- disk -- time -- average_cores -- tag
    1 -- 2 -- 812 -- 1430 -- 35 -- 40.218 -- 1.553 -- 1

=================  ==================  ======================================
field              lfm column          meaning
=================  ==================  ======================================
``taskid``         ``task_id``         kept as text
``core``           ``cores_peak``      the monitor's peak cores (a feature:
                                       lfm's ``cores`` is the average)
``memory``         ``memory``          peak resident memory, MB
``virtual_memory`` ``virtual_memory``  MB
``disk``           ``disk``            MB
``time``           ``wall_time``       s
``average_cores``  ``cores``           average cores; ``cpu_time`` = cores x
                                       wall_time
``tag``            ``category``        the task's category (text)
=================  ==================  ======================================

Every task is ``ok``. A file whose header has no ``tag`` field (7 fields) gets the
``category`` option, by default ``default``. Negative numbers ("not measured")
become NaN. Blank lines are skipped; any other line must have as many fields as
the header and numbers where numbers belong, else :class:`TraceFormatError`
names the line.
"""
from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from lfm.trace.errors import TraceFormatError, describe

if TYPE_CHECKING:  # pandas only when reading: detection imports this module
    import pandas as pd

SEPARATOR = " -- "
#: Header fields, in the artifact's order (``tag`` optional).
FIELDS: tuple[str, ...] = ("taskid", "core", "memory", "virtual_memory", "disk", "time", "average_cores", "tag")
_NUMERIC = {"core": "cores_peak", "memory": "memory", "virtual_memory": "virtual_memory", "disk": "disk",
            "time": "wall_time", "average_cores": "cores"}


def looks_like_works21(first_line: str) -> bool:
    """Is ``first_line`` the header of a ``resources_all.txt``?"""
    fields = [f.strip().lower() for f in first_line.split("--")]
    return len(fields) >= 7 and fields[0] == "taskid" and fields[1:3] == ["core", "memory"]


def _header(line: str, path: str) -> list[str]:
    fields = [f.strip().lower() for f in line.strip().split(SEPARATOR.strip())]
    # the artifact's writer appends the tag value to the header line too ("... -- average_cores -- 1")
    if len(fields) == 8 and fields[7] != "tag":
        fields[7] = "tag"
    if tuple(fields) not in (FIELDS, FIELDS[:7]):
        raise TraceFormatError(path, 1, f"expected the header {' -- '.join(FIELDS)}, got {describe(line.strip())}")
    return fields


def _number(text: str, field: str, path: str, lineno: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TraceFormatError(path, lineno, f"expected a number in field {field!r}, got {describe(text)}") from None
    if math.isnan(value) or math.isinf(value):
        raise TraceFormatError(path, lineno, f"expected a finite number in field {field!r}, got {describe(text)}")
    return value if value >= 0 else math.nan


def read_works21(path: str | os.PathLike, *, category: str = "default") -> pd.DataFrame:
    """Read a WORKS'21 ``resources_all.txt`` into a schema DataFrame (see the module doc)."""
    from lfm.trace.frame import frame_from_rows
    path = os.fspath(path)
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8-sig") as stream:
        header = stream.readline()
        if not header.strip():
            raise TraceFormatError(path, 1, f"expected the header {' -- '.join(FIELDS)}, got an empty line")
        fields = _header(header, path)
        for lineno, line in enumerate(stream, 2):
            if not line.strip():
                continue
            cells = [c.strip() for c in line.strip().split(SEPARATOR.strip())]
            if len(cells) != len(fields):
                raise TraceFormatError(path, lineno, f"expected {len(fields)} fields separated by ' -- ' "
                                                     f"like the header, got {len(cells)} (truncated line?)")
            values = dict(zip(fields, cells))
            tag = values.get("tag", category)
            if not tag:
                raise TraceFormatError(path, lineno, "expected a tag (the task's category), got an empty field")
            row: dict[str, Any] = {"category": tag, "status": "ok"}
            for field, column in _NUMERIC.items():
                row[column] = _number(values[field], field, path, lineno)
            row["cpu_time"] = row["cores"] * row["wall_time"]
            row["task_id"] = values["taskid"]
            rows.append(row)
    return frame_from_rows(rows)
