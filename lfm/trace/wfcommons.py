"""WfCommons workflow instances (JSON, https://wfcommons.org).

Two layouts are read:

* schema 1.4 and earlier 1.x: ``workflow.tasks[]``, each task with its
  measurements (``runtimeInSeconds``, ``cores``, ``avgCPU``,
  ``memoryInBytes``, ``readBytes``, ``writtenBytes``, ``category``, ``machine``);
* schema 1.5 and later: ``workflow.specification.tasks[]`` (``id``, ``name``)
  joined by ``id`` to ``workflow.execution.tasks[]`` (``runtimeInSeconds``,
  ``coreCount``, ``avgCPU``, ``memoryInBytes``, ``readBytes``,
  ``writtenBytes``, ``machines``).

Conversion: ``memoryInBytes`` -> ``memory`` MB; ``runtimeInSeconds`` ->
``wall_time`` s; ``readBytes``/``writtenBytes`` -> ``bytes_read``/
``bytes_written`` MB (1.4 files without them: ``bytesRead``/``bytesWritten``,
which are in kB of 1000 bytes there); ``avgCPU`` is a CPU utilisation in percent
(100 = one busy core), so ``cores`` = avgCPU / 100 and ``cpu_time`` = cores x
wall_time; the requested ``cores`` (1.4) or ``coreCount`` (1.5+) ->
``alloc_cores``. ``category``: the task's own ``category`` when present, else
its ``name`` without a trailing ``_ID0000012`` (or ``_00000012``) task number.
Every task is ``ok`` (instances hold successful runs). Rows come in the file's
task order; features: ``task_id``, ``name``, ``machine``. Errors give the JSON
path, e.g. ``workflow.tasks[3].memoryInBytes``.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any

import pandas as pd

from lfm.resources import MB
from lfm.trace.errors import TraceFormatError, describe
from lfm.trace.frame import frame_from_rows

_TASK_NUMBER = re.compile(r"_(ID\d+|\d{5,})$")


def category_of(name: str) -> str:
    """A task name without its trailing task number: ``blastall_ID000002`` -> ``blastall``."""
    stripped = _TASK_NUMBER.sub("", name)
    return stripped or name


def _number(task: dict, key: str, path: str, where: str) -> float | None:
    value = task.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TraceFormatError(path, f"{where}.{key}", f"expected a number, got {describe(value)}")
    return None if value < 0 else float(value)


def _task_row(spec: dict, measured: dict, path: str, where: str) -> dict[str, Any]:
    name = spec.get("name", measured.get("name"))
    category = spec.get("category") or measured.get("category")
    if category is None:
        if not isinstance(name, str) or not name:
            raise TraceFormatError(path, f"{where}.name", f"expected a task name (string), got {describe(name)}")
        category = category_of(name)
    if not isinstance(category, str) or not category:
        raise TraceFormatError(path, f"{where}.category", f"expected a non-empty string, got {describe(category)}")
    row: dict[str, Any] = {"category": category, "status": "ok"}
    wall = _number(measured, "runtimeInSeconds", path, where)
    if wall is not None:
        row["wall_time"] = wall
    memory = _number(measured, "memoryInBytes", path, where)
    if memory is not None:
        row["memory"] = memory / MB
    for new, old, column in (("readBytes", "bytesRead", "bytes_read"),
                             ("writtenBytes", "bytesWritten", "bytes_written")):
        value = _number(measured, new, path, where)
        if value is None:
            value = _number(measured, old, path, where)
            value = None if value is None else value * 1000.0
        if value is not None:
            row[column] = value / MB
    avg_cpu = _number(measured, "avgCPU", path, where)
    if avg_cpu is not None:
        row["cores"] = avg_cpu / 100.0
        if wall is not None:
            row["cpu_time"] = row["cores"] * wall
    requested = _number(measured, "coreCount", path, where)
    if requested is None:
        requested = _number(measured, "cores", path, where)
    if requested is not None:
        row["alloc_cores"] = requested
    row["task_id"] = spec.get("id", measured.get("id"))
    row["name"] = name
    machine = measured.get("machine")
    if machine is None and isinstance(measured.get("machines"), list) and measured["machines"]:
        machine = measured["machines"][0]
    row["machine"] = machine
    return row


def _tasks(obj: Any, key: str, path: str) -> list:
    if not isinstance(obj, list):
        raise TraceFormatError(path, key, f"expected a list of tasks, got {describe(obj)}")
    for i, task in enumerate(obj):
        if not isinstance(task, dict):
            raise TraceFormatError(path, f"{key}[{i}]", f"expected a task object, got {describe(task)}")
    return obj


def read_wfcommons(path: str | os.PathLike) -> pd.DataFrame:
    """Read a WfCommons JSON instance into a schema DataFrame (see the module doc)."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as stream:
            doc = json.load(stream)
    except json.JSONDecodeError as exc:
        raise TraceFormatError(path, exc.lineno, f"expected a WfCommons JSON instance, got invalid JSON "
                                                 f"({exc.msg} at column {exc.colno})") from None
    workflow = doc.get("workflow") if isinstance(doc, dict) else None
    if not isinstance(workflow, dict):
        raise TraceFormatError(path, "workflow", f"expected a 'workflow' object, got {describe(workflow)}")
    rows = []
    if "tasks" in workflow:
        for i, task in enumerate(_tasks(workflow["tasks"], "workflow.tasks", path)):
            rows.append(_task_row(task, task, path, f"workflow.tasks[{i}]"))
    elif isinstance(workflow.get("specification"), dict):
        spec_tasks = _tasks(workflow["specification"].get("tasks"), "workflow.specification.tasks", path)
        execution = workflow.get("execution")
        if not isinstance(execution, dict):
            raise TraceFormatError(path, "workflow.execution", "expected an 'execution' object with the "
                                   "measured tasks, got none (a specification without execution data)")
        exec_tasks = _tasks(execution.get("tasks"), "workflow.execution.tasks", path)
        by_id = {task.get("id"): (i, task) for i, task in enumerate(exec_tasks)}
        for spec in spec_tasks:
            if spec.get("id") in by_id:
                i, measured = by_id[spec.get("id")]
                rows.append(_task_row(spec, measured, path, f"workflow.execution.tasks[{i}]"))
    else:
        raise TraceFormatError(path, "workflow", "expected 'workflow.tasks' (schema 1.4) or "
                               "'workflow.specification.tasks' (schema 1.5+), got keys "
                               f"{', '.join(map(str, workflow)) or 'none'}")
    return frame_from_rows(rows)
