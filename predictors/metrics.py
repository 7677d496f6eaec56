"""Metrics of a replay: how much of what was allocated was really used.

All functions take the per-attempt table that :func:`predictors.replay` returns
(one row per attempt, columns ``task``, ``attempt``, ``allocation``, ``usage``,
``wall_time``, ``ok``) and follow the definitions of the cctools reference
replay (``../shared/anchors/README.md``):

- ``AE_time`` (absolute efficiency) = Σ over successful attempts of usage·wall_time
  / Σ over all attempts of allocation·wall_time. A failed attempt is charged its
  allocation for the task's full wall time.
- ``AE_count`` = the same with every attempt weighted 1 (Σ usage / Σ allocation).
- ``waste`` (resource unit · s, e.g. MB·s) = allocated·time − used·time;
  ``waste_failed`` is the part spent on failed attempts, ``waste_internal`` the
  part over-allocated to successful ones.
- ``retries`` = failed attempts; ``tasks_retried`` = tasks with at least one
  failed attempt; ``tasks_unfinished`` = tasks whose usage exceeded the largest
  allocation the predictor could give (only possible with a cap below the usage).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

#: Summary columns, in display order.
SUMMARY_COLUMNS = ["AE_time", "AE_count", "waste", "waste_failed", "waste_internal",
                   "retries", "tasks_retried", "tasks_unfinished", "tasks", "attempts"]


def efficiency(allocation: np.ndarray, usage: np.ndarray, wall_time: np.ndarray,
               ok: np.ndarray, task: np.ndarray) -> dict[str, float]:
    """Summary metrics of one replay from per-attempt arrays (see module docstring).

    ``allocation`` and ``usage`` in the resource's unit (MB for memory), ``wall_time``
    in s (already with 0/missing replaced by 1 s), ``ok`` True for the successful
    attempt of each task, ``task`` the task index of each attempt.
    """
    allocation = np.asarray(allocation, dtype=float)
    usage = np.asarray(usage, dtype=float)
    wall_time = np.asarray(wall_time, dtype=float)
    ok = np.asarray(ok, dtype=bool)
    task = np.asarray(task)
    allocated_time = allocation * wall_time
    used_time = np.where(ok, usage * wall_time, 0.0)
    total_alloc_time = float(allocated_time.sum())
    total_used_time = float(used_time.sum())
    total_alloc = float(allocation.sum())
    total_used = float(usage[ok].sum())
    failed = ~ok
    n_tasks = int(len(np.unique(task))) if len(task) else 0
    n_ok = int(ok.sum())
    return {
        "AE_time": total_used_time / total_alloc_time if total_alloc_time > 0 else float("nan"),
        "AE_count": total_used / total_alloc if total_alloc > 0 else float("nan"),
        "waste": total_alloc_time - total_used_time,
        "waste_failed": float(allocated_time[failed].sum()),
        "waste_internal": float((allocated_time[ok] - used_time[ok]).sum()),
        # A task that never succeeded has a last attempt that is not a retry.
        "retries": int(failed.sum()) - (n_tasks - n_ok),
        "tasks_retried": int(len(np.unique(task[failed]))) if failed.any() else 0,
        "tasks_unfinished": n_tasks - n_ok,
        "tasks": n_tasks,
        "attempts": int(len(task)),
    }


def summarize(attempts: pd.DataFrame, by: list[str], *, allocation: str = "allocation",
              usage: str = "usage", time: str = "wall_time") -> pd.DataFrame:
    """One row of :data:`SUMMARY_COLUMNS` per group of ``attempts`` (grouped by the
    columns ``by``, e.g. ``["predictor", "seed"]``), from the columns named
    ``allocation`` and ``usage`` (pass ``allocation_cores``/``usage_cores`` for
    another resource of a multi-resource replay); ``time`` names the column of
    each attempt's charged time (``charged_time``: wall time plus a retry cost)."""
    rows = []
    if attempts.empty:
        return pd.DataFrame(columns=by + SUMMARY_COLUMNS)
    for key, group in attempts.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        metrics = efficiency(group[allocation].to_numpy(), group[usage].to_numpy(),
                             group[time].to_numpy(), group["ok"].to_numpy(),
                             group["task"].to_numpy())
        rows.append(dict(zip(by, key)) | metrics)
    return pd.DataFrame(rows, columns=by + SUMMARY_COLUMNS)


def pool_makespan(task: np.ndarray, allocation: np.ndarray, usage: np.ndarray, wall_time: np.ndarray,
                  ok: np.ndarray, workers: int, size: float) -> dict[str, float]:
    """Simulate running a replay's attempts on ``workers`` identical workers of
    ``size`` (the resource's unit, e.g. MB) and return ``makespan`` (s),
    ``throughput`` (tasks per hour of makespan) and ``utilization`` (used·time /
    (workers·size·makespan)).

    Model: a first-in-first-out queue in trace order; the head of the queue starts
    as soon as some worker has ``allocation`` free (first fit; the queue waits
    behind it), holds it for the task's wall time, and a failed attempt puts the
    task's next attempt back at the head of the queue when it ends. Arrays are
    per attempt, in the order of :func:`predictors.replay`'s ``attempts``.
    """
    import heapq
    from collections import deque

    if workers < 1 or not size > 0:
        raise ValueError(f"a pool needs at least one worker of a positive size, got {workers} of {size}")
    task = np.asarray(task)
    allocation = np.asarray(allocation, dtype=float)
    if len(allocation) and allocation.max() > size:
        raise ValueError(f"an allocation of {allocation.max():g} does not fit a worker of size {size:g}")
    wall = np.asarray(wall_time, dtype=float).tolist()
    ok_l = np.asarray(ok, dtype=bool).tolist()
    usage_l = np.asarray(usage, dtype=float).tolist()
    alloc_l = allocation.tolist()
    # index of each task's first attempt; attempts of a task are consecutive rows
    starts = np.flatnonzero(np.r_[True, task[1:] != task[:-1]]) if len(task) else np.array([], int)
    queue = deque(starts.tolist())
    free = [float(size)] * workers
    running: list[tuple[float, int, int]] = []   # (end time, row, worker)
    now = 0.0
    used_time = 0.0
    n = len(alloc_l)
    while queue or running:
        while queue:
            row = queue[0]
            need = alloc_l[row]
            w = next((i for i in range(workers) if free[i] >= need), -1)
            if w < 0:
                break
            queue.popleft()
            free[w] -= need
            heapq.heappush(running, (now + wall[row], row, w))
        end, row, w = heapq.heappop(running)
        now = end
        free[w] += alloc_l[row]
        if ok_l[row]:
            used_time += usage_l[row] * wall[row]
        elif row + 1 < n and task[row + 1] == task[row]:
            queue.appendleft(row + 1)
    n_tasks = len(starts)
    return {"makespan": now,
            "throughput": n_tasks / now * 3600 if now > 0 else float("nan"),
            "utilization": used_time / (workers * size * now) if now > 0 else float("nan")}
