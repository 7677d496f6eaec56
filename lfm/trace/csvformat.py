"""CSV (or tab-separated) traces whose columns are the schema's.

Column names are matched case-insensitively, and a unit suffix converts the
column to lfm units: ``memory_mb``, ``memory_gb``, ``disk_bytes``,
``wall_time_s``, ``cpu_time_ms``, ``wall_time_min``... (sizes: ``b``/``bytes``,
``kb``, ``mb``, ``gb``, ``tb``; times: ``us``, ``ms``, ``s``, ``min``, ``h``).
Unit-less resource columns are taken as already in lfm units (MB, s).
``category`` is optional: without it every row gets the ``category`` option,
by default the file name without its extension. ``status`` is optional
(default ``ok``); when present it must be ``ok``, ``exhausted`` or ``error``.
Other columns are kept as features: ``input_size`` (MB; also with a size suffix,
``input_size_gb``, ``input_size_bytes``...) must hold numbers; any other column
whose every non-empty cell is a number becomes a float column, except
identifiers (``*id``, ``name``, ``host``, ``hash``, ``tag``...), which stay text as
written (``0001``). Empty cells are NaN; negative numbers (e.g. a ``-1``
"not measured" sentinel) become NaN too; infinite ones (``inf``, ``1e999``) are errors.
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from lfm.trace.errors import TraceFormatError, describe
from lfm.trace.frame import normalize
from lfm.trace.schema import ALLOC_PREFIX, RESOURCES, STATUSES
from lfm.trace.units import SIZE_UNITS, TIME_UNITS

_SIZE_RESOURCES = {"memory", "virtual_memory", "disk", "bytes_read", "bytes_written"}
_TIME_RESOURCES = {"cpu_time", "wall_time"}
_TIME_SUFFIXES = {"s", "sec", "ms", "us", "min", "h"}


def column_meaning(name: str) -> tuple[str, float] | None:
    """(schema column, factor to lfm units) for a CSV column name, or None."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    prefix = ""
    if key.startswith(ALLOC_PREFIX):
        prefix, key = ALLOC_PREFIX, key[len(ALLOC_PREFIX):]
    if key in RESOURCES:
        return prefix + key, 1.0
    base, _, suffix = key.rpartition("_")
    if base in _SIZE_RESOURCES and suffix in SIZE_UNITS and len(suffix) > 1:
        return prefix + base, SIZE_UNITS[suffix]
    if base in _TIME_RESOURCES and suffix in _TIME_SUFFIXES:
        return prefix + base, TIME_UNITS[suffix]
    return None


_IDENTIFIERS = {"name", "host", "hostname", "machine", "node", "hash", "tag", "label", "command", "process",
                "workdir", "exceeded", "backend", "function"}


def feature_meaning(name: str) -> tuple[str, float] | None:
    """(feature column, factor to MB) for ``input_size`` and its unit-suffixed forms, else None."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    if key == "input_size":
        return key, 1.0
    base, _, suffix = key.rpartition("_")
    if base == "input_size" and suffix in SIZE_UNITS and len(suffix) > 1:
        return base, SIZE_UNITS[suffix]
    return None


def _identifier(name: str) -> bool:
    key = name.strip().lower()
    return key in _IDENTIFIERS or key.endswith("id") or key.endswith("_ids")


def sniff_delimiter(header: str) -> str:
    """``\\t`` when the header line has tabs, else ``,``."""
    return "\t" if "\t" in header else ","


def read_csv_trace(path: str | os.PathLike, *, category: str | None = None,
                   sep: str | None = None) -> pd.DataFrame:
    """Read a CSV trace (see the module doc) into a schema DataFrame."""
    path = os.fspath(path)
    with open(path, encoding="utf-8-sig", newline="") as stream:
        header = stream.readline()
    if not header.strip():
        raise TraceFormatError(path, 1, "expected a CSV header naming the columns, got an empty line")
    sep = sep or sniff_delimiter(header)
    try:
        names = next(csv.reader([header], delimiter=sep))
        text_columns = {name.strip(): str for name in names if column_meaning(name) is None}
        raw = pd.read_csv(path, sep=sep, skip_blank_lines=False, keep_default_na=False, na_values=[""],
                          skipinitialspace=True, dtype=text_columns, encoding="utf-8-sig")
    except (pd.errors.ParserError, csv.Error) as exc:
        found = re.search(r"line (\d+), saw (\d+)", str(exc))
        if found:
            raise TraceFormatError(path, int(found.group(1)), f"expected {len(header.split(sep))} fields like "
                                                              f"the header, got {found.group(2)}") from None
        raise TraceFormatError(path, None, f"expected CSV: {str(exc).strip()}") from None
    raw = raw.dropna(how="all")  # blank lines; the index keeps file positions
    lines = raw.index.to_numpy() + 2  # 1-based, counting the header line
    return _convert(raw, lines, path, category if category is not None else Path(path).stem)


def _numbers(values: pd.Series, name: object, lines: np.ndarray, path: str) -> pd.Series:
    """A column as float64 (empty cells NaN); TraceFormatError naming the first cell that is not a number."""
    if not pd.api.types.is_numeric_dtype(values):  # pandas found a cell that is not a number
        text = values.astype("string").str.strip()
        values = pd.to_numeric(text, errors="coerce")
        bad = values.isna() & text.notna() & (text != "")
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise TraceFormatError(path, int(lines[i]), f"expected a number in column {name!r}, "
                                                        f"got {describe(text.iloc[i])}")
    values = values.astype("float64")
    infinite = np.isinf(values.to_numpy())
    if infinite.any():   # "inf", or a number too large for a float ("1e999")
        i = int(np.argmax(infinite))
        raise TraceFormatError(path, int(lines[i]), f"expected a finite number in column {name!r}, "
                                                    f"got {describe(float(values.iloc[i]))}")
    return values


def _all_numbers(values: pd.Series) -> bool:
    """Does the (text) column hold numbers only, with at least one?"""
    text = values.dropna().astype("string").str.strip()
    text = text[text != ""]
    return len(text) > 0 and bool(pd.to_numeric(text, errors="coerce").notna().all())


def _convert(raw: pd.DataFrame, lines: np.ndarray, path: str, default_category: str) -> pd.DataFrame:
    out: dict[str, object] = {}
    seen: dict[str, str] = {}
    known = False
    for name in raw.columns:
        meaning = column_meaning(str(name))
        lower = str(name).strip().lower()
        if meaning is None:
            if lower in ("category", "status"):
                if lower in seen:
                    raise TraceFormatError(path, 1, f"expected one {lower!r} column, got {seen[lower]!r} and {name!r}")
                seen[lower] = str(name)
                out[lower] = raw[name]
                continue
            feature = feature_meaning(str(name))
            if feature is not None:
                column, factor = feature
                if column in seen:
                    raise TraceFormatError(path, 1, f"expected one column for {column!r}, got {seen[column]!r} "
                                                    f"and {name!r}")
                seen[column] = str(name)
                values = _numbers(raw[name], name, lines, path) * factor
                out[column] = values.where(values >= 0)
            elif not _identifier(str(name)) and _all_numbers(raw[name]):
                out[str(name).strip()] = pd.to_numeric(raw[name].astype("string").str.strip()).astype("float64")
            else:
                out[str(name).strip()] = raw[name]
            continue
        column, factor = meaning
        if column in seen:
            raise TraceFormatError(path, 1, f"expected one column for {column!r}, got {seen[column]!r} and {name!r}")
        seen[column] = str(name)
        known = known or not column.startswith(ALLOC_PREFIX)
        values = _numbers(raw[name], name, lines, path) * factor
        out[column] = values.where(values >= 0)
    if not known:
        raise TraceFormatError(path, 1, "expected a CSV header with at least one resource column "
                                        f"({', '.join(RESOURCES)}), got {', '.join(map(str, raw.columns))}")
    frame = pd.DataFrame(out)
    if "category" in frame:
        missing = frame["category"].isna()
        if missing.any():
            i = int(np.argmax(missing.to_numpy()))
            raise TraceFormatError(path, int(lines[i]), "expected a category, got an empty cell")
        frame["category"] = frame["category"].astype(str).str.strip()
    else:
        frame.insert(0, "category", default_category)
    if "status" in frame:
        status = frame["status"].fillna("ok").astype(str).str.strip().str.lower()
        bad = ~status.isin(STATUSES)
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise TraceFormatError(path, int(lines[i]), f"expected status {', '.join(STATUSES)}, "
                                                        f"got {describe(frame['status'].iloc[i])}")
        frame["status"] = status
    return normalize(frame.reset_index(drop=True))
