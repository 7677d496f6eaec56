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
task order; features: ``task_id``, ``name``, ``machine`` and ``input_size``: the
summed size in MB of the task's input files, known before it runs (1.4: its
``files[]`` with ``link: "input"``, sized by ``sizeInBytes``, or by ``size`` in kB
of 1000 bytes in files written before ``sizeInBytes``; 1.5+: its ``inputFiles``
ids looked up in ``workflow.specification.files[]``); NaN for a task whose file
list is not given, 0 when it has no inputs. Errors give the JSON
path, e.g. ``workflow.tasks[3].memoryInBytes``.
"""
from __future__ import annotations

import json
import math
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
    if not math.isfinite(value):   # JSON readers accept Infinity, NaN and 1e999 (inf)
        raise TraceFormatError(path, f"{where}.{key}", f"expected a finite number, got {describe(value)}")
    return None if value < 0 else float(value)


def _file_bytes(item: Any, path: str, where: str) -> float:
    """Size in bytes of one WfCommons file object."""
    if not isinstance(item, dict):
        raise TraceFormatError(path, where, f"expected a file object, got {describe(item)}")
    for key, factor in (("sizeInBytes", 1.0), ("size", 1000.0)):
        if key in item:
            value = _number(item, key, path, where)
            if value is None:
                raise TraceFormatError(path, f"{where}.{key}", f"expected a size >= 0, got {describe(item[key])}")
            return value * factor
    raise TraceFormatError(path, where, f"expected a file with 'sizeInBytes', got keys {', '.join(map(str, item))}")


def _optional_list(obj: dict, key: str, what: str, path: str, where: str) -> list | None:
    """``obj[key]`` when it is a list, None when absent; TraceFormatError otherwise."""
    value = obj.get(key)
    if value is not None and not isinstance(value, list):
        raise TraceFormatError(path, f"{where}.{key}", f"expected a list of {what}, got {describe(value)}")
    return value


def input_size_14(task: dict, path: str, where: str) -> float | None:
    """MB of the ``files[]`` with ``link: "input"`` of a 1.4 task; None without ``files``."""
    files = _optional_list(task, "files", "files", path, where)
    if files is None:
        return None
    total = 0.0
    for j, item in enumerate(files):
        if isinstance(item, dict) and item.get("link") == "input":
            total += _file_bytes(item, path, f"{where}.files[{j}]")
    return total / MB


def input_size_15(spec: dict, sizes: dict[str, float], path: str, where: str) -> float | None:
    """MB of a 1.5+ specification task's ``inputFiles``; None without them."""
    ids = _optional_list(spec, "inputFiles", "file ids", path, where)
    if ids is None:
        return None
    total = 0.0
    for j, file_id in enumerate(ids):
        if file_id not in sizes:
            raise TraceFormatError(path, f"{where}.inputFiles[{j}]", f"expected a file id declared in "
                                   f"workflow.specification.files, got {describe(file_id)}")
        total += sizes[file_id]
    return total / MB


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
            row = _task_row(task, task, path, f"workflow.tasks[{i}]")
            row["input_size"] = input_size_14(task, path, f"workflow.tasks[{i}]")
            rows.append(row)
    elif isinstance(workflow.get("specification"), dict):
        spec_tasks = _tasks(workflow["specification"].get("tasks"), "workflow.specification.tasks", path)
        execution = workflow.get("execution")
        if not isinstance(execution, dict):
            raise TraceFormatError(path, "workflow.execution", "expected an 'execution' object with the "
                                   "measured tasks, got none (a specification without execution data)")
        exec_tasks = _tasks(execution.get("tasks"), "workflow.execution.tasks", path)
        by_id = {task.get("id"): (i, task) for i, task in enumerate(exec_tasks)}
        files = workflow["specification"].get("files") or []
        if not isinstance(files, list):
            raise TraceFormatError(path, "workflow.specification.files", f"expected a list of files, "
                                                                         f"got {describe(files)}")
        sizes = {}
        for j, item in enumerate(files):
            sizes[item.get("id") if isinstance(item, dict) else None] = _file_bytes(
                item, path, f"workflow.specification.files[{j}]")
        for k, spec in enumerate(spec_tasks):
            if spec.get("id") in by_id:
                i, measured = by_id[spec.get("id")]
                row = _task_row(spec, measured, path, f"workflow.execution.tasks[{i}]")
                row["input_size"] = input_size_15(spec, sizes, path, f"workflow.specification.tasks[{k}]")
                rows.append(row)
    else:
        raise TraceFormatError(path, "workflow", "expected 'workflow.tasks' (schema 1.4) or "
                               "'workflow.specification.tasks' (schema 1.5+), got keys "
                               f"{', '.join(map(str, workflow)) or 'none'}")
    return frame_from_rows(rows)
