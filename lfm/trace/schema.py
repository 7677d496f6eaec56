"""The trace schema: column names, units, statuses, and normalisation.

A trace is a table with one row per task attempt:

``category`` (str)
    the kind of task; predictors learn one model per category.
resource columns (float, NaN where not measured, never a negative sentinel)
    ``memory``, ``virtual_memory``, ``disk``, ``bytes_read``, ``bytes_written``
    in MB (2**20 bytes); ``cores`` (float); ``cpu_time``, ``wall_time`` in s;
    ``total_processes`` (count); ``start``, ``end`` in s since the epoch.
``status`` (str)
    ``ok`` (the attempt finished), ``exhausted`` (killed for exceeding its
    allocation; ``exceeded`` lists which resources) or ``error`` (it failed for
    another reason).
``alloc_<resource>`` (float, optional)
    what the attempt was allocated, same unit as the resource.
feature columns (optional, free-form)
    e.g. ``task_id``, ``attempt``, ``function``, ``name``, ``exceeded``, ``host``.

Every reader returns its frame through :func:`normalize`, so columns always come
in this order: ``COLUMNS``, then the ``alloc_*`` columns, then the features.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from lfm.resources import UNITS

#: Resource columns, in their stable order; units in :data:`lfm.UNITS`.
RESOURCES: tuple[str, ...] = tuple(UNITS)

#: Columns every trace frame has, in this order.
COLUMNS: tuple[str, ...] = ("category", *RESOURCES, "status")

#: Allowed values of ``status``.
STATUSES: tuple[str, ...] = ("ok", "exhausted", "error")

#: Prefix of allocation columns (``alloc_memory`` ...).
ALLOC_PREFIX = "alloc_"


def _number(name: str, value: Any) -> float | None:
    """``value`` as a float >= 0, None when absent (None or NaN); ValueError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (Real, np.number)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def make_row(category: str, resources: Mapping[str, float], status: str, *,
             alloc: Mapping[str, float] | None = None, **features: Any) -> dict[str, Any]:
    """One trace row as a plain dict, ready for :meth:`Trace.append`.

    ``resources`` maps resource name -> measured value (units of :data:`RESOURCES`;
    a :class:`lfm.Resources` works); ``None``/NaN values are left out (not
    measured). Names beyond :data:`RESOURCES` are kept as extra numeric columns.
    ``alloc`` maps resource name -> allocated value and becomes ``alloc_<name>``.
    ``features`` are free-form JSON-serialisable columns (``task_id``,
    ``attempt``, ``exceeded``, ...); they must not reuse a schema column name.

    Raises ValueError for a status outside :data:`STATUSES`, an empty category,
    or a value that is not a finite number >= 0.
    """
    if not isinstance(category, str) or not category:
        raise ValueError(f"category must be a non-empty string, got {category!r}")
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
    row: dict[str, Any] = {"category": category, "status": status}
    for name, value in (resources or {}).items():
        if not isinstance(name, str) or not name or name in ("category", "status") \
                or name.startswith(ALLOC_PREFIX):
            raise ValueError(f"bad resource name {name!r}; known resources: {', '.join(RESOURCES)}")
        number = _number(name, value)
        if number is not None:
            row[name] = number
    for name, value in (alloc or {}).items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"bad allocation name {name!r}; known resources: {', '.join(RESOURCES)}")
        number = _number(f"alloc[{name!r}]", value)
        if number is not None:
            row[ALLOC_PREFIX + name] = number
    for name, value in features.items():
        if name in row or name in COLUMNS or name.startswith(ALLOC_PREFIX):
            raise ValueError(f"feature {name!r} clashes with a schema column "
                             f"({', '.join(COLUMNS)}, alloc_*); rename it")
        row[name] = value
    return row


def _alloc_order(name: str) -> tuple[int, str]:
    base = name[len(ALLOC_PREFIX):]
    return (RESOURCES.index(base) if base in RESOURCES else len(RESOURCES), base)


def normalize(frame: pd.DataFrame, *, default_status: str = "ok") -> pd.DataFrame:
    """``frame`` reordered and typed into the trace schema (a new frame).

    Missing resource columns are added as NaN, resource and ``alloc_*`` columns
    become float64 (non-numbers and negative "not measured" sentinels become
    NaN), ``category`` str, a missing ``status`` becomes ``default_status``.
    Readers validate values first; this only shapes.
    """
    n = len(frame)

    def numbers(column: pd.Series) -> np.ndarray:
        values = pd.to_numeric(column, errors="coerce").astype("float64").to_numpy(copy=True)
        values[values < 0] = np.nan
        return values

    out: dict[str, Any] = {}
    if "category" in frame:
        out["category"] = frame["category"].astype(str).to_numpy(dtype=object)
    else:
        out["category"] = np.full(n, "default", dtype=object)
    for name in RESOURCES:
        if name in frame:
            out[name] = numbers(frame[name])
        else:
            out[name] = np.full(n, np.nan)
    if "status" in frame:
        out["status"] = frame["status"].fillna(default_status).astype(str).to_numpy(dtype=object)
    else:
        out["status"] = np.full(n, default_status, dtype=object)
    allocs = sorted((c for c in frame.columns if isinstance(c, str) and c.startswith(ALLOC_PREFIX)),
                    key=_alloc_order)
    for name in allocs:
        out[name] = numbers(frame[name])
    for name in frame.columns:
        if name not in out:
            out[name] = frame[name].to_numpy()
    return pd.DataFrame(out, index=pd.RangeIndex(n))


def frame_from_rows(rows: Iterable[Mapping[str, Any]], *, default_status: str = "ok") -> pd.DataFrame:
    """A schema frame from row dicts (columns in first-appearance order for features)."""
    rows = list(rows)
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame(columns=list(COLUMNS))
    return normalize(frame, default_status=default_status)
