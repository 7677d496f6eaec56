"""Traces: lfm's own trace format (record + read) and importers of other formats.

A trace is a table with one row per task attempt (schema in
:mod:`lfm.trace.schema`). ``Trace(path).append(make_row(...))`` records rows in
lfm's own JSON-lines format; ``read_trace(path)`` reads that format and the
formats of other tools (CSV, cctools resource_monitor summaries, Work Queue /
TaskVine transaction logs, Nextflow traces, WfCommons instances, the WORKS'21
k-means artifact's ``resources_all.txt``) into a pandas
DataFrame.

Importing this package (to record rows) does not import pandas; reading does.
"""
from lfm.trace.detect import FORMATS, detect_format
from lfm.trace.errors import TraceFormatError
from lfm.trace.lfmformat import Trace
from lfm.trace.reader import read_trace
from lfm.trace.schema import COLUMNS, RESOURCES, STATUSES, make_row

__all__ = [
    "COLUMNS", "FORMATS", "RESOURCES", "STATUSES", "Trace", "TraceFormatError",
    "detect_format", "make_row", "normalize", "read_trace",
]


def __getattr__(name: str):
    if name == "normalize":  # lazily: it needs pandas
        from lfm.trace.frame import normalize
        return normalize
    raise AttributeError(f"module 'lfm.trace' has no attribute {name!r}")
