"""``read_trace``: one entry point for every trace format lfm reads."""
from __future__ import annotations

import importlib
import inspect
import os
from typing import TYPE_CHECKING

from lfm.trace.detect import FORMATS, detect_format
from lfm.trace.errors import TraceFormatError

if TYPE_CHECKING:
    import pandas as pd

#: format name -> (module, function) reading it into a schema DataFrame.
READERS: dict[str, tuple[str, str]] = {
    "lfm": ("lfm.trace.lfmformat", "read_lfm"),
    "csv": ("lfm.trace.csvformat", "read_csv_trace"),
    "cctools": ("lfm.trace.cctools", "read_cctools"),
    "wq": ("lfm.trace.wqlog", "read_wq_log"),
    "nextflow": ("lfm.trace.nextflow", "read_nextflow"),
    "wfcommons": ("lfm.trace.wfcommons", "read_wfcommons"),
    "works21": ("lfm.trace.works21", "read_works21"),
}
assert tuple(READERS) == FORMATS


def reader_for(format: str):
    """The reading function of a format name; ValueError listing the known ones."""
    try:
        module, name = READERS[format]
    except (KeyError, TypeError):
        raise ValueError(f"unknown trace format {format!r}; known formats: {', '.join(FORMATS)}") from None
    return getattr(importlib.import_module(module), name)


def read_trace(path: str | os.PathLike, format: str | None = None, **options) -> pd.DataFrame:
    """Read a trace file into a pandas DataFrame in the trace schema.

    ``format`` is one of ``lfm``, ``csv``, ``cctools``, ``wq`` (Work Queue or
    TaskVine transaction log), ``nextflow``, ``wfcommons``, ``works21`` (the
    WORKS'21 k-means artifact's ``resources_all.txt``); None detects it from
    the content. ``options`` go to that format's reader (e.g. ``category=`` for
    CSV without a category column). The frame has one row per task attempt:
    ``category``, the resource columns (float, lfm units, NaN where absent),
    ``status``, then ``alloc_*`` and feature columns (see
    :mod:`lfm.trace.schema`).

    Raises FileNotFoundError for a missing path, ValueError for an unknown
    format or option, TraceFormatError (a ValueError) naming the file, the line
    and what was expected for malformed content or an empty file.
    """
    if format is not None:
        reader = reader_for(format)
    if not os.path.exists(path):
        raise FileNotFoundError(f"trace file not found: {os.fspath(path)}")
    if format is None:
        format = detect_format(path)
        reader = reader_for(format)
    elif os.path.isfile(path) and os.path.getsize(path) == 0:
        raise TraceFormatError(path, None, f"expected a {format} trace, got an empty file")
    accepted = [p for p in inspect.signature(reader).parameters if p != "path"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for trace format {format!r}; "
                         f"accepted: {', '.join(accepted) or 'none'}")
    try:
        return reader(path, **options)
    except UnicodeDecodeError as exc:
        raise TraceFormatError(path, None, f"expected UTF-8 text, got undecodable bytes "
                                           f"({exc.reason} at byte {exc.start})") from None
