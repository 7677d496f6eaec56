"""The demo workflow on raw Work Queue with its own autolabel, configured as
Parsl's ``WorkQueueExecutor(autolabel=True, autocategory=True)`` configures it
(:mod:`lfm.demo.wqbaseline`), as a :class:`lfm.demo.runs.RunResult` beside
lfm's runs.

"Used" is lfm's exact measurement of the same call (category, argument) from
an lfm run of the same workflow, when given, because Work Queue's sampling
monitor misses short peaks; otherwise Work Queue's own measurement.
Allocations are what Work Queue granted. Work Queue retries an exhausted task
inside the manager: those attempts count as retries, but their allocation and
time are not visible to the caller, so the efficiencies flatter this row.

Units: memory MB, cores, seconds.
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from lfm.demo.runs import RESOURCES, Progress, RunResult, _tree_rss
from lfm.demo.wqbaseline import RawWorkQueue, exhausted_attempts, granted, wall_time

NAME = "wq-autolabel"


def usage_of(result: RunResult) -> dict[tuple[str, Any], dict[str, float]]:
    """(category, argument) -> measured cores and memory of each successful
    attempt of an lfm run (its trace rows carry the call's argument as ``arg``)."""
    out = {}
    rows = result.attempts
    if not len(rows) or "arg" not in rows:
        return out
    for _, row in rows[rows["status"] == "ok"].iterrows():
        out[(row["category"], row["arg"])] = {r: float(row[r]) for r in RESOURCES if r in row}
    return out


def run_wq_autolabel(calls: Sequence[tuple[str, int]], worker: Mapping[str, float], *,
                     usage: Mapping[tuple[str, Any], Mapping[str, float]] | None = None,
                     progress: bool = True,
                     timeout: float = 600.0) -> RunResult:
    """Run ``calls`` as raw Work Queue tasks on one local worker of ``worker``
    size with Parsl's autolabel configuration; see the module docstring."""
    usage = usage or {}
    bar = Progress(NAME, len(calls)) if progress else None
    rows: list[dict[str, Any]] = []
    peak = [0.0]
    t0 = time.time()

    def collect(task: Any) -> None:
        kind, arg = task.lfm_call
        measured = getattr(task, "resources_measured", None)
        used = dict(usage.get((kind, arg)) or {})
        for r in RESOURCES:
            if r not in used and measured is not None and getattr(measured, r, None) is not None:
                used[r] = max(0.0, float(getattr(measured, r)))
        alloc = granted(task)
        ok = task.result == 0 and task.return_status == 0
        end = time.time() - t0
        row = {"task": task.lfm_index, "category": kind, "arg": arg, "attempt": 1 + exhausted_attempts(task),
               "status": "ok" if ok else "error", "end": end, "wall_time": wall_time(task),
               **used, **{f"alloc_{r}": alloc[r] for r in RESOURCES if r in alloc}}
        row["start"] = end - row["wall_time"]
        rows.append(row)
        peak[0] = max(peak[0], _tree_rss())
        if bar is not None:
            bar.update(len(rows), sum(r["attempt"] - 1 for r in rows), {}, final=len(rows) == len(calls))

    with RawWorkQueue([worker], mode="parsl-autolabel") as raw:
        tasks = []
        for index, (kind, arg) in enumerate(calls):
            task = raw.task(f"from lfm.demo.workload import {kind}; {kind}({arg!r})", kind)
            task.lfm_index, task.lfm_call = index, (kind, arg)
            tasks.append(task)
        makespan, _ = raw.run(tasks, collect=collect, timeout=timeout)
    attempts = pd.DataFrame(rows).sort_values("end").reset_index(drop=True)
    errors = [f"{r['category']}({r['arg']}) failed on raw Work Queue" for r in rows if r["status"] != "ok"]
    return RunResult(NAME, "workqueue", attempts, pd.DataFrame(
        columns=["time", "category", "resource", "kind", "value"]), _stats(attempts), makespan,
        peak[0], errors)


def _stats(attempts: pd.DataFrame) -> pd.DataFrame:
    """Per category, the columns of ``AutolabelExecutor.stats()`` that
    :func:`lfm.demo.runs.compare` reads."""
    out = []
    for category, rows in attempts.groupby("category"):
        row = {"category": category, "tasks": len(rows), "attempts": int(rows["attempt"].sum()),
               "retries": int((rows["attempt"] - 1).sum())}
        for r in RESOURCES:
            ok = rows[rows["status"] == "ok"]
            row[f"used_{r}_s"] = float((ok.get(r, 0.0) * ok["wall_time"]).sum())
            row[f"alloc_{r}_s"] = float((rows.get(f"alloc_{r}", 0.0) * rows["wall_time"]).sum())
        out.append(row)
    return pd.DataFrame(out).set_index("category")
