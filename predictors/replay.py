"""Replay a trace through predictors: which labelling policy wastes least, and by how much.

Semantics (the same as the cctools reference replay in ``../shared/anchors/README.md``,
so numbers compare):

- Tasks in trace order, sequentially: each task completes and is observed before
  the next one is predicted.
- Usage of memory and disk is rounded up to whole MB (``round_usage``).
- For each task: allocation = ``predict(category)``; while some labelled resource's
  allocation is below the usage, the attempt fails, is charged allocation × the
  task's full wall time, and the next allocation is
  ``predict(category, previous=allocation, exceeded=...)``; on success the usage
  (and the task's wall time) is observed. Failed attempts are not observed.
- Wall time 0 or missing counts as 1 s.
- ``retry_cost=S`` (s, default 0): every failed attempt is charged S extra seconds
  at its allocation (dispatch and queue latency of a retry); the summary then
  holds ``AE_time`` with that charge and ``AE_time_plain`` without it.
- Features: the trace's feature columns (``features``; by default those of
  :data:`~predictors.replay_tasks.FEATURE_COLUMNS` that the trace has) are
  passed to every ``predict`` and ``observe`` of their task as
  ``features={name: value}`` (missing values left out).
- ``group_by="category"``: one model per category; ``None``: all tasks in one.

Predictors given by name are created with ``max_resources`` = the whole machine W
(see :func:`~predictors.replay_tasks.machine_size`: the largest usage rounded
up to a power-of-two GB for memory and disk, e.g. 2048 MB for bioblast.csv)
unless ``max_resources`` is given.
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from predictors.base import AllocationLimitReached, Predictor, check_resources
from predictors.metrics import SUMMARY_COLUMNS, efficiency, pool_makespan, summarize
from predictors.registry import create
from predictors.replay_tasks import check_pool, feature_rows, machine_size, task_columns

@dataclass
class ReplayResult:
    """What :func:`replay` returns.

    ``attempts``: one row per attempt — predictor, seed, task (0-based index in the
    trace), category, attempt (0 for the first), allocation, usage, wall_time (s,
    0/missing → 1), ok; for a multi-resource replay ``allocation``/``usage`` are the
    first resource and ``allocation_<r>``/``usage_<r>`` hold every resource.
    ``summary``: one row per predictor × seed with the metrics of
    :mod:`predictors.metrics` plus ``seconds`` (wall time of that replay, predictor
    included) and ``tasks_per_s``. ``by_category``: the same metrics per predictor ×
    seed × category. ``states``: snapshots of each predictor's ``describe()``
    (e.g. bucket bounds) taken every ``record_state`` tasks, one row per value:
    predictor, seed, task, category, resource, key, value.
    """

    attempts: pd.DataFrame
    summary: pd.DataFrame
    by_category: pd.DataFrame
    states: pd.DataFrame = field(default_factory=pd.DataFrame)
    resources: tuple[str, ...] = ("memory",)
    machine: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        cols = ["predictor", "seed", "AE_time", "AE_count", "retries", "tasks_retried", "tasks_per_s"]
        return f"ReplayResult(resources={self.resources})\n{self.summary[cols].to_string(index=False)}"


def _as_predictors(predictors: Any, seeds: tuple[int, ...], resources: tuple[str, ...],
                   machine: Mapping[str, float], params: Mapping[str, Any]) -> list[tuple[str, int, Predictor]]:
    """(label, seed, fresh predictor) for every name × seed, and instances as given."""
    if isinstance(predictors, (str, Predictor)):
        predictors = [predictors]
    out = []
    for p in predictors:
        if isinstance(p, str):
            for s in seeds:
                out.append((p, s, create(p, resources=resources, max_resources=dict(machine), seed=s, **params)))
        elif isinstance(p, Predictor):
            missing = [r for r in resources if r not in p.resources]
            if missing:
                raise ValueError(f"predictor {p!r} does not label {missing}, which the replay needs")
            out.append((getattr(p, "name", type(p).__name__), p.seed, p))
        else:
            raise TypeError(f"predictors must be names or Predictor instances, got {type(p).__name__}")
    return out


class _Progress:
    """A plain progress bar on stderr (no dependency), drawn at most ~10 times/s."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.last = 0.0

    def update(self, done: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        frac = done / self.total if self.total else 1.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r{self.label[:44]:<44} [{bar:<30}] {done}/{self.total} tasks")
        if force:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _run_one(predictor: Predictor, cats: list, usage: dict[str, list[float]], wall: list[float],
             resources: tuple[str, ...], record_state: int, progress: _Progress,
             offset: int, feats: list[dict[str, float]] | None) -> tuple[dict[str, list], list[tuple], float]:
    """Replay every task through one predictor; per-attempt columns, state snapshots, seconds."""
    n = len(cats)
    reveal = getattr(predictor, "reveal", None)
    predict, observe = predictor.predict, predictor.observe
    single = len(resources) == 1
    r0 = resources[0]
    u0 = usage[r0]
    col_task, col_attempt, col_ok = [], [], []
    col_alloc = {r: [] for r in resources}
    snapshots: list[tuple] = []
    started = time.perf_counter()
    for i in range(n):
        cat = cats[i]
        w = wall[i]
        if single:
            need = {"wall_time": w, r0: u0[i]}
        else:
            need = {r: usage[r][i] for r in resources}
            need.setdefault("wall_time", w)
        f = None if feats is None else feats[i]
        if reveal is not None:
            reveal(cat, need)
        alloc = predict(cat, features=f)
        attempt = 0
        while True:
            if single:
                exceeded = (r0,) if alloc[r0] < u0[i] else ()
            else:
                exceeded = tuple(r for r in resources if alloc[r] < need[r])
            col_task.append(i)
            col_attempt.append(attempt)
            for r in resources:
                col_alloc[r].append(alloc[r])
            if not exceeded:
                col_ok.append(True)
                observe(cat, need, features=f)
                break
            col_ok.append(False)
            attempt += 1
            try:
                alloc = predict(cat, previous=alloc, exceeded=exceeded, features=f)
            except AllocationLimitReached:
                break  # usage above the machine: the task cannot run; reported as unfinished
        if record_state and i % record_state == 0:
            snapshots.append((i, cat, predictor.describe(cat)))
        if (i & 1023) == 0:
            progress.update(offset + i)
    seconds = time.perf_counter() - started
    cols = {"task": col_task, "attempt": col_attempt, "ok": col_ok}
    for r in resources:
        cols["allocation_" + r] = col_alloc[r]
    return cols, snapshots, seconds


def _flatten_states(label: str, seed: int, snapshots: list[tuple]) -> list[tuple]:
    rows = []
    for task, cat, desc in snapshots:
        for resource, info in desc.items():
            for key, value in (info or {}).items():
                if isinstance(value, (list, tuple, np.ndarray)):
                    for item in value:
                        v = item[0] if isinstance(item, (list, tuple, np.ndarray)) else item
                        rows.append((label, seed, task, cat, resource, key, float(v)))
                elif isinstance(value, (int, float, np.number)):
                    rows.append((label, seed, task, cat, resource, key, float(value)))
    return rows


def replay(trace: pd.DataFrame, predictors: Any = "max-seen", *,
           group_by: str | None = "category", resources: Iterable[str] = ("memory",),
           seeds: Iterable[int] | None = None, seed: int = 0,
           max_resources: Mapping[str, float] | None = None, round_usage: bool = True,
           progress: bool = False, record_state: int = 0,
           params: Mapping[str, Any] | None = None,
           pool: int | tuple[int, float] | None = None, retry_cost: float = 0.0,
           features: Iterable[str] | None = None) -> ReplayResult:
    """Replay ``trace`` task by task through each predictor (module docstring: semantics).

    trace : a DataFrame in the trace schema (``category``, resource columns in MB /
        cores / s, optional ``wall_time`` and ``status``: only ``ok`` rows are replayed);
        read a file with :func:`lfm.trace.read_trace` first.
    predictors : a name, a Predictor instance, or a list of them. Names are created
        once per seed with ``resources``, ``max_resources`` and ``params``; instances
        are used as they are (their state is updated, their own seed reported).
    group_by : the column whose value is a task's category, or ``None`` for one group.
    resources : the resources to label (usage columns of the trace).
    seeds, seed : seeds for named predictors (``seeds`` wins; default ``(seed,)``).
    max_resources : the machine size per resource; default :func:`machine_size` of
        the trace's usage (the whole machine W).
    round_usage : round memory and disk usage up to whole MB, as the reference does.
    progress : draw a progress bar on stderr.
    record_state : every that many tasks, record the predictor's ``describe()`` of the
        task's category in ``result.states`` (0: never) — used for plots.
    params : extra constructor parameters for named predictors.
    pool : simulate running the attempts on a pool of workers: ``n`` workers of the
        machine size, or ``(n, size)`` with size in the first resource's unit; adds
        ``makespan`` (s), ``throughput`` (tasks/h) and ``utilization`` to the summary
        (model: :func:`predictors.metrics.pool_makespan`).
    retry_cost : seconds (>= 0) charged at its allocation to every failed attempt on
        top of the task's wall time; the summary's ``AE_time`` includes it and
        ``AE_time_plain`` does not (module docstring).
    features : the columns passed to the predictors as each task's features;
        default the :data:`FEATURE_COLUMNS` the trace has, ``()`` for none.

    A predictor that needs the usage before predicting (the ``oracle``) gets it
    through its ``reveal(category, usage)`` method, called before each first
    prediction. A task whose usage exceeds the largest allocation the predictor
    may give (``AllocationLimitReached``) is counted in ``tasks_unfinished`` and not
    observed; with the default machine size this cannot happen.
    """
    resources = check_resources(resources)   # one name alone, or several
    if seeds is not None:   # (a bad ``seed`` is reported by the predictor that takes it)
        seeds = tuple(seeds)
        if not seeds:
            raise ValueError("seeds must name at least one seed")
        bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0]
        if bad:
            raise ValueError(f"seeds must be integers >= 0, got {bad[0]!r}")
    seeds = seeds if seeds is not None else (seed,)
    if isinstance(record_state, bool) or not isinstance(record_state, (int, np.integer)) or record_state < 0:
        raise ValueError(f"record_state must be an integer >= 0 (every that many tasks; 0: never), "
                         f"got {record_state!r}")
    pool = check_pool(pool)
    if not isinstance(trace, pd.DataFrame):
        raise TypeError(f"trace must be a pandas DataFrame (read a file with lfm.trace.read_trace), "
                        f"got {type(trace).__name__}")
    if not isinstance(retry_cost, (int, float)) or isinstance(retry_cost, bool) or not 0 <= retry_cost < math.inf:
        raise ValueError(f"retry_cost must be a number of seconds >= 0, got {retry_cost!r}")
    cats, usage, wall, df = task_columns(trace, resources, group_by, round_usage)
    feats = feature_rows(df, features)
    machine = {r: machine_size(r, usage[r]) for r in resources}
    if max_resources is not None:
        machine.update(max_resources)
    params = dict(params or {})
    taken = [k for k in ("resources", "max_resources", "seed") if k in params]
    if taken:
        raise ValueError(f"params must not set {taken[0]!r}: replay gives it to every named predictor; "
                         f"pass replay's own {'seeds/seed' if taken[0] == 'seed' else taken[0]} argument instead")
    runs = _as_predictors(predictors, seeds, resources, machine, params)

    n = len(cats)
    bar = _Progress(n * len(runs), f"replay {len(runs)} run(s) of {n} tasks", progress)
    attempt_frames, summaries, cat_summaries, state_rows = [], [], [], []
    cat_array = np.array(cats, dtype=object)
    wall_array = np.asarray(wall)
    for k, (label, s, predictor) in enumerate(runs):
        bar.label = f"replay {label} seed {s} ({k + 1}/{len(runs)})"
        cols, snapshots, seconds = _run_one(predictor, cats, usage, wall, resources,
                                            record_state, bar, k * n, feats)
        task = np.asarray(cols["task"], dtype=np.int64)
        frame = pd.DataFrame({"predictor": label, "seed": s, "task": task,
                              "category": cat_array[task], "attempt": cols["attempt"]})
        frame["allocation"] = cols["allocation_" + resources[0]]
        frame["usage"] = np.asarray(usage[resources[0]])[task]
        frame["wall_time"] = wall_array[task]
        frame["ok"] = cols["ok"]
        if retry_cost > 0:
            frame["charged_time"] = frame["wall_time"] + np.where(frame["ok"], 0.0, float(retry_cost))
        if len(resources) > 1:
            for r in resources:
                frame["allocation_" + r] = cols["allocation_" + r]
                frame["usage_" + r] = np.asarray(usage[r])[task]
        attempt_frames.append(frame)
        if len(frame):
            summ = _summaries(frame, ["predictor", "seed"], resources, retry_cost)
        else:  # an empty trace still gets its row (0 tasks, AE undefined)
            summ = pd.DataFrame([{"predictor": label, "seed": s} | efficiency([], [], [], [], [])])
        summ["seconds"] = seconds
        summ["tasks_per_s"] = n / seconds if seconds > 0 else float("inf")
        if pool is not None:
            workers, size = pool[0], machine[resources[0]] if pool[1] is None else pool[1]
            sim = pool_makespan(frame["task"].to_numpy(), frame["allocation"].to_numpy(),
                                frame["usage"].to_numpy(), frame["wall_time"].to_numpy(),
                                frame["ok"].to_numpy(), int(workers), float(size))
            for key, value in sim.items():
                summ[key] = value
        summaries.append(summ)
        cat_summaries.append(_summaries(frame, ["predictor", "seed", "category"], resources, retry_cost))
        state_rows.extend(_flatten_states(label, s, snapshots))
    bar.update(n * len(runs), force=True)
    attempts = pd.concat(attempt_frames, ignore_index=True) if attempt_frames else pd.DataFrame()
    return ReplayResult(
        attempts=attempts,
        summary=pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame(columns=SUMMARY_COLUMNS),
        by_category=pd.concat(cat_summaries, ignore_index=True) if cat_summaries else pd.DataFrame(),
        states=pd.DataFrame(state_rows, columns=["predictor", "seed", "task", "category", "resource", "key", "value"]),
        resources=resources, machine=machine)


def _summaries(frame: pd.DataFrame, by: list[str], resources: tuple[str, ...],
               retry_cost: float = 0.0) -> pd.DataFrame:
    """Metrics of the first resource, plus ``<metric>_<r>`` columns per resource when
    several; with a ``retry_cost``, time-based metrics charge it and ``AE_time_plain``
    is the AE without it."""
    if retry_cost > 0:
        out = summarize(frame, by, time="charged_time")
        out.insert(out.columns.get_loc("AE_time") + 1, "AE_time_plain", summarize(frame, by)["AE_time"].to_numpy())
    else:
        out = summarize(frame, by)
    if len(resources) > 1:
        for r in resources:
            extra = summarize(frame, by, allocation="allocation_" + r, usage="usage_" + r)
            for col in ("AE_time", "AE_count", "waste"):
                out[f"{col}_{r}"] = extra[col].to_numpy()
    return out
