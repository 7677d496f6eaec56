"""Guess a trace file's format from its content (not its name)."""
from __future__ import annotations

import os
import re

from lfm.trace.errors import TraceFormatError
from lfm.trace.jsonstream import first_json_value
from lfm.trace.schema import STATUSES
from lfm.trace.works21 import looks_like_works21

#: Formats :func:`detect_format` can recognise, in the order it tries them.
FORMATS: tuple[str, ...] = ("lfm", "csv", "cctools", "wq", "nextflow", "wfcommons", "works21")

_HEAD_BYTES = 64 * 1024
_WQ_LINE = re.compile(r"^\d+\s+\d+\s+(TASK|WORKER|MANAGER|MASTER|CATEGORY|TRANSFER|LIBRARY|CACHE_UPDATE)\b")
_WFCOMMONS_KEY = re.compile(r'"(schemaVersion|workflow)"\s*:')
_NEXTFLOW_KEYS = {"process", "realtime", "peak_rss", "%cpu", "rchar", "wchar", "peak_vmem", "hash", "native_id"}


def _is_unit_pair(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], str)


def classify_object(obj: object) -> str | None:
    """The format of a decoded JSON document or JSON line, None when unknown."""
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("workflow"), dict) or "schemaVersion" in obj:
        return "wfcommons"
    if isinstance(obj.get("category"), str) and obj.get("status") in STATUSES:
        return "lfm"
    if any(_is_unit_pair(v) for v in obj.values()) or "exit_type" in obj or "cores_avg" in obj \
            or "monitor_version" in obj:
        return "cctools"
    return None


def detect_format(path: str | os.PathLike) -> str:
    """The name of the format of ``path`` (one of :data:`FORMATS`).

    A directory is read as cctools summaries. Raises TraceFormatError when the
    file is empty or matches none of the formats (the message lists them).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return "cctools"
    with open(path, "rb") as stream:
        head = stream.read(_HEAD_BYTES).decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = [line for line in head.splitlines() if line.strip()]
    if not lines:
        raise TraceFormatError(path, None, "expected a trace, got an empty file")
    first = lines[0].strip()
    if first.startswith("{") or first.startswith("["):
        try:
            found = classify_object(first_json_value(head))
        except ValueError:  # a document longer than the head, or broken JSON
            if _WFCOMMONS_KEY.search(head):
                return "wfcommons"
            try:
                with open(path, encoding="utf-8-sig") as stream:
                    found = classify_object(first_json_value(stream.read()))
            except (ValueError, UnicodeDecodeError) as exc:
                raise TraceFormatError(path, getattr(exc, "lineno", None),
                                       f"expected JSON (lfm, cctools or WfCommons), got invalid JSON: {exc}") from None
        if found:
            return found
    elif any(_WQ_LINE.match(line) for line in lines[:50]) or \
            (first.startswith("#") and ("manager_pid" in first or "master_pid" in first)):
        return "wq"
    elif looks_like_works21(first):
        return "works21"
    else:
        fields = {f.strip().strip('"').lower() for f in re.split(r"[\t,]", first)}
        if ("process" in fields or "name" in fields) and "status" in fields \
                and len(fields & _NEXTFLOW_KEYS) >= 2:
            return "nextflow"
        from lfm.trace.csvformat import column_meaning
        if any(column_meaning(f) for f in fields):
            return "csv"
    raise TraceFormatError(path, 1, f"expected a trace in one of the formats {', '.join(FORMATS)} "
                                    f"(tried all, by content), got {first[:60]!r}")
