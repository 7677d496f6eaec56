"""What a replay reads from a trace: each task's category, usage per resource
(rounded up to whole MB for memory and disk), effective wall time (s) and
features, and the whole machine those usages imply. Malformed values are
refused naming the row; unmeasured rows are left out with a warning.

Units: memory and disk in MB, cores a float, wall_time in seconds.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

#: Resources whose usage is rounded up to whole units (MB) when ``round_usage``.
ROUNDED_RESOURCES = ("memory", "disk")
#: Category given to every task with ``group_by=None``.
ONE_GROUP = "all"
#: Columns read as features by default: what is known before a task runs
#: (``input_size`` in MB). Measured columns (cpu_time, bytes_read, ...) are not
#: features: they are only known after the task ran.
FEATURE_COLUMNS = ("input_size",)



def machine_size(resource: str, values: Iterable[float]) -> float:
    """The whole machine W for ``resource`` given the usages ``values``: the largest
    usage rounded up to a power of two — of GB (result in MB, at least 1024) for
    memory and disk, of cores (at least 1) for cores, of hours (result in s, at
    least 3600) for wall_time. This is the anchors' "whole machine"."""
    top = max((float(v) for v in values), default=0.0)
    unit = {"memory": 1024.0, "disk": 1024.0, "cores": 1.0, "wall_time": 3600.0}[resource]
    if top <= unit:
        return unit
    return unit * 2 ** math.ceil(math.log2(top / unit) - 1e-12)


def task_columns(df: pd.DataFrame, resources: tuple[str, ...], group_by: str | None,
                  round_usage: bool) -> tuple[list, dict[str, list[float]], list[float], pd.DataFrame]:
    """Categories, usage per resource and effective wall times of every task, as
    lists, and the replayed rows."""
    missing = [r for r in resources if r not in df.columns]
    if missing:
        raise ValueError(f"trace has no column {missing[0]!r} to replay (columns: {', '.join(map(str, df.columns))})")
    if "status" in df.columns:
        ok = df["status"].fillna("ok") == "ok"
        if len(df) and not ok.any():
            raise ValueError(f"no task of the trace succeeded (all {len(df)} have a status other than 'ok', "
                             f"e.g. {df['status'].iloc[0]!r}): nothing to replay")
        df = df[ok]
    df = _drop_unmeasured(df, resources)
    n = len(df)
    if group_by is None:
        cats = [ONE_GROUP] * n
    elif group_by in df.columns:
        cats = df[group_by].fillna("default").tolist()
    else:
        raise ValueError(f"cannot group by {group_by!r}: the trace has no such column "
                         f"(columns: {', '.join(map(str, df.columns))}); use group_by=None for one group")
    usage = {}
    for r in resources:
        values = pd.to_numeric(df[r], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
        if len(bad):
            row = df.index[bad[0]]
            raise ValueError(f"trace row {row} (0-based, header excluded): {r} usage must be a finite "
                             f"number >= 0, got {df[r].iloc[bad[0]]}")
        if round_usage and r in ROUNDED_RESOURCES:
            values = np.ceil(values)
        usage[r] = values.tolist()
    if "wall_time" in df.columns:
        wall = pd.to_numeric(df["wall_time"], errors="coerce").to_numpy(dtype=float)
        wall = np.where(np.isfinite(wall) & (wall > 0), wall, 1.0)
    else:
        wall = np.ones(n)
    return cats, usage, wall.tolist(), df


def _drop_unmeasured(df: pd.DataFrame, resources: tuple[str, ...]) -> pd.DataFrame:
    """The rows whose usage of every replayed resource was measured. A task
    with no value (NaN, empty: the trace readers' mark for "not measured") has
    nothing to replay against; those rows are left out with one warning that
    counts them and names the first. Values present but not numbers, negative
    or infinite stay errors (:func:`task_columns`)."""
    missing = np.zeros(len(df), dtype=bool)
    for r in resources:
        missing |= df[r].isna().to_numpy()
    if not missing.any():
        return df
    if missing.all():
        raise ValueError(f"no task of the trace has a measured {'/'.join(resources)} usage (all {len(df)} "
                         f"are empty or NaN, the trace readers' mark for a missing or negative value): "
                         f"nothing to replay")
    first = df.index[np.flatnonzero(missing)[0]]
    warnings.warn(f"replay leaves out {int(missing.sum())} of {len(df)} tasks whose "
                  f"{'/'.join(resources)} usage was not measured (first: row {first}, 0-based)",
                  stacklevel=4)
    return df[~missing]


def feature_rows(df: pd.DataFrame, features: Iterable[str] | None) -> list[dict[str, float]] | None:
    """One ``{name: value}`` per row of ``df`` for the feature columns (None when none)."""
    if features is None:
        names = [c for c in FEATURE_COLUMNS if c in df.columns]
    else:
        names = [features] if isinstance(features, str) else list(features)
        missing = [c for c in names if c not in df.columns]
        if missing:
            raise ValueError(f"feature column {missing[0]!r} is not in the trace "
                             f"(columns: {', '.join(map(str, df.columns))})")
    if not names:
        return None
    cols = {c: pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float) for c in names}
    rows = []
    for i in range(len(df)):
        row = {}
        for c, v in cols.items():
            x = v[i]
            if x == x and abs(x) != math.inf:
                row[c] = float(x)
        rows.append(row)
    return rows


def check_pool(pool: Any) -> tuple[int, float | None] | None:
    """``pool=`` as (workers, size or None for the machine size); ValueError when malformed."""
    if pool is None:
        return None
    workers, size = pool, None
    if isinstance(pool, (tuple, list)):
        workers, size = tuple(pool) if len(pool) == 2 else (None, None)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1 or (
            size is not None and (isinstance(size, bool) or not isinstance(size, (int, float, np.number))
                                  or not 0 < size < math.inf)):
        raise ValueError(f"pool must be a number of workers >= 1 or (workers, size) with a positive size, "
                         f"got {pool!r}")
    return int(workers), None if size is None else float(size)
