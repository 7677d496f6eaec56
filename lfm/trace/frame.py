"""Shaping row dicts or any DataFrame into the trace schema (pandas)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from lfm.trace.schema import ALLOC_PREFIX, COLUMNS, RESOURCES


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
