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
              usage: str = "usage") -> pd.DataFrame:
    """One row of :data:`SUMMARY_COLUMNS` per group of ``attempts`` (grouped by the
    columns ``by``, e.g. ``["predictor", "seed"]``), from the columns named
    ``allocation`` and ``usage`` (pass ``allocation_cores``/``usage_cores`` for
    another resource of a multi-resource replay)."""
    rows = []
    if attempts.empty:
        return pd.DataFrame(columns=by + SUMMARY_COLUMNS)
    for key, group in attempts.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        metrics = efficiency(group[allocation].to_numpy(), group[usage].to_numpy(),
                             group["wall_time"].to_numpy(), group["ok"].to_numpy(),
                             group["task"].to_numpy())
        rows.append(dict(zip(by, key)) | metrics)
    return pd.DataFrame(rows, columns=by + SUMMARY_COLUMNS)
