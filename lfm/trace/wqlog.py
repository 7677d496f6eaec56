"""Work Queue and TaskVine transaction logs (``specify_transactions_log``).

Each line is ``TIME MANAGER_PID EVENT ...`` (TIME in microseconds since the
epoch); lines starting with ``#`` are the header. The task events read here::

    TASK id WAITING category (FIRST_RESOURCES|MAX_RESOURCES) [attempt] {requested}
    TASK id RUNNING worker (FIRST_RESOURCES|MAX_RESOURCES) {allocated}
    TASK id (RETRIEVED|DONE) RESULT exit_code {limits_exceeded} {measured}

(TaskVine writes ``READY`` for ``WAITING`` in some versions and an attempt
number before the resources; both are accepted, and so are ``WAITING`` and
``RUNNING`` lines without resources.) Other events (``MANAGER``,
``WORKER``, ``CATEGORY``, ``TRANSFER``, ``WAITING_RETRIEVAL``, ...) are skipped.

One row per attempt result: a ``RETRIEVED`` line makes the row; the ``DONE``
line that repeats the final result of the same attempt adds none (a ``DONE``
without a ``RETRIEVED`` for its attempt, e.g. a task given up on, does). Status:
``ok`` for ``SUCCESS`` with exit code 0, ``exhausted`` for
``RESOURCE_EXHAUSTION`` (``exceeded`` names the resources of
``{limits_exceeded}``), ``error`` for any other result or a non-zero exit code.
Measured resources use the resource_monitor conventions (``[value, "unit"]``,
see :mod:`lfm.trace.cctools`); the allocation of the attempt (the ``RUNNING``
box, else the last ``WAITING`` request) becomes ``alloc_cores``,
``alloc_memory``, ``alloc_disk`` (and ``alloc_wall_time`` when set). Features:
``task_id`` (int), ``attempt`` (1-based, per task), ``result``, ``exit_code``,
``exceeded``, ``worker``, ``cores_peak``. Without measured ``start``/``end``, the
log times of ``RUNNING`` and of the result are used.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lfm.trace.cctools import convert_resources, exceeded_names
from lfm.trace.errors import TraceFormatError, describe
from lfm.trace.frame import frame_from_rows

_ALLOC_KEYS = ("cores", "memory", "disk", "wall_time")
_WAITING = ("WAITING", "READY")
_RESULT = ("RETRIEVED", "DONE")


@dataclass
class _Task:
    category: str = "default"
    attempt: int = 0
    reported: int = -1  # the attempt whose result already made a row
    alloc: dict[str, float] = field(default_factory=dict)
    worker: str | None = None
    started: float | None = None


def _json_objects(text: str, count: int, path: str, lineno: int, what: str,
                  optional: bool = False) -> tuple[list[str], list[dict]]:
    """Split ``text`` into the words before its JSON objects and ``count`` objects
    (``optional``: no JSON at all gives ``count`` empty objects)."""
    brace = text.find("{")
    if brace < 0 and optional:
        return text.split(), [{} for _ in range(count)]
    if brace < 0:
        raise TraceFormatError(path, lineno, f"expected {what}, got {describe(text.strip())} "
                                             "(no JSON object; truncated line?)")
    words = text[:brace].split()
    decoder = json.JSONDecoder()
    objects, pos = [], brace
    for _ in range(count):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise TraceFormatError(path, lineno, f"expected {what}, got invalid JSON at column "
                                                 f"{exc.pos + 1} ({exc.msg}; truncated line?)") from None
        if not isinstance(obj, dict):
            raise TraceFormatError(path, lineno, f"expected {what}, got {describe(obj)} instead of a JSON object")
        objects.append(obj)
    if text[pos:].strip():
        raise TraceFormatError(path, lineno, f"expected {what}, got extra text {describe(text[pos:].strip())}")
    return words, objects


def _allocation(obj: dict, path: str, lineno: int) -> dict[str, float]:
    values, _ = convert_resources({k: v for k, v in obj.items() if k in _ALLOC_KEYS}, path, lineno)
    return values


def read_wq_log(path: str | os.PathLike) -> pd.DataFrame:
    """Read a Work Queue / TaskVine transaction log into a schema DataFrame."""
    path = os.fspath(path)
    tasks: dict[int, _Task] = {}
    rows: list[dict[str, Any]] = []
    seen_event = False
    with open(path, encoding="utf-8-sig") as stream:
        for lineno, line in enumerate(stream, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split(None, 5)
            if len(parts) < 3 or not parts[0].isdigit() or not parts[1].isdigit():
                raise TraceFormatError(path, lineno, "expected 'TIME MANAGER_PID EVENT ...' with integer "
                                                     f"TIME and MANAGER_PID, got {describe(line.strip())}")
            seen_event = True
            if parts[2] != "TASK":
                continue
            if len(parts) < 5 or not parts[3].isdigit():
                raise TraceFormatError(path, lineno, "expected 'TIME MANAGER_PID TASK id STATE ...', "
                                                     f"got {describe(line.strip())}")
            when = int(parts[0]) / 1e6
            task_id, state, rest = int(parts[3]), parts[4], parts[5] if len(parts) > 5 else ""
            task = tasks.setdefault(task_id, _Task())
            if state in _WAITING:
                what = "'WAITING category (FIRST|MAX)_RESOURCES [attempt] {resources}'"
                words, (requested,) = _json_objects(rest, 1, path, lineno, what, optional=True)
                if not words:
                    raise TraceFormatError(path, lineno, f"expected {what}, got no category")
                task.category = words[0]
                task.alloc = _allocation(requested, path, lineno)
            elif state == "RUNNING":
                what = "'RUNNING worker (FIRST|MAX)_RESOURCES {resources}'"
                words, (box,) = _json_objects(rest, 1, path, lineno, what, optional=True)
                task.attempt += 1
                task.worker = words[0] if words else None
                task.started = when
                allocated = _allocation(box, path, lineno)
                task.alloc = allocated or task.alloc
            elif state in _RESULT:
                what = "'RETRIEVED|DONE RESULT exit_code {limits_exceeded} {measured}'"
                words, (limits, measured) = _json_objects(rest, 2, path, lineno, what)
                if len(words) != 2 or not words[1].lstrip("-").isdigit():
                    raise TraceFormatError(path, lineno, f"expected {what}, got {describe(rest.strip())}")
                if state == "DONE" and task.reported == task.attempt:
                    continue  # repeats the RETRIEVED result of this attempt
                rows.append(_result_row(task_id, task, words[0], int(words[1]), limits, measured,
                                        when, path, lineno))
                task.reported = task.attempt
    if not seen_event:
        raise TraceFormatError(path, None, "expected Work Queue / TaskVine transaction log events "
                                           "('TIME MANAGER_PID EVENT ...'), got none")
    return frame_from_rows(rows)


def _result_row(task_id: int, task: _Task, result: str, exit_code: int, limits: dict, measured: dict,
                when: float, path: str, lineno: int) -> dict[str, Any]:
    resources, extras = convert_resources(measured, path, lineno)
    exceeded = exceeded_names(limits, path, lineno)
    if result == "RESOURCE_EXHAUSTION":
        status = "exhausted"
    elif result == "SUCCESS" and exit_code == 0:
        status = "ok"
    else:
        status = "error"
    if "start" not in resources and task.started is not None:
        resources["start"] = task.started
    resources.setdefault("end", when)
    row: dict[str, Any] = {"category": task.category, "status": status, **resources}
    row.update({"alloc_" + k: v for k, v in task.alloc.items()})
    row.update({"task_id": task_id, "attempt": max(task.attempt, 1), "result": result,
                "exit_code": exit_code, "exceeded": exceeded, "worker": task.worker, **extras})
    return row
