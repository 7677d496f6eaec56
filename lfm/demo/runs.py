"""Run the demo workflow under a labelling policy and compare policies.

:func:`run_policy` runs the calls of :func:`lfm.demo.workload.workflow` through
:class:`lfm.executors.AutolabelExecutor` the way a steering loop does: a few
calls in flight, a new one submitted when one finishes (so each first label
comes from what the predictor has learnt so far). It records every attempt
(measured usage, label, status, times relative to the run's start), the
predictor's labels and buckets over time, and the sampled memory of the demo's
own process tree. :func:`compare` turns runs into the comparison table.

Units: memory MB, cores a float, times in seconds.
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import pandas as pd
import psutil

from lfm.demo.workload import FUNCTIONS
from lfm.resources import MB

#: Resources the demo labels (disk is not: the calls write nothing).
RESOURCES = ("cores", "memory")
UNITS = {"cores": "cores", "memory": "MB"}


@dataclass
class RunResult:
    """One run of the workflow under one policy.

    attempts : one row per attempt — task, category, attempt (1 = first),
        status (ok / exhausted / error), ``start``/``end`` (s since the run
        started), ``memory`` (peak MB), ``cores``, ``wall_time`` (s),
        ``alloc_memory`` (MB), ``alloc_cores``.
    labels : the predictor's state over time — time (s), category, resource,
        kind (``bucket``: a bucket's upper bound; ``label``: the label of the
        latest first attempt), value.
    stats : ``AutolabelExecutor.stats()`` at the end (one row per category).
    makespan : seconds from the first submission to the last result.
    peak_memory : largest sampled resident memory of the demo's child
        processes (the calls and their helpers), MB.
    errors : calls that failed for good (their exception messages).
    """

    policy: str
    backend: str
    attempts: pd.DataFrame
    labels: pd.DataFrame
    stats: pd.DataFrame
    makespan: float
    peak_memory: float
    errors: list[str] = field(default_factory=list)

    @property
    def tasks(self) -> int:
        return int(self.attempts["task"].nunique()) if len(self.attempts) else 0


class _Recorder:
    """The executor's trace sink: keeps each attempt's row, with times made
    relative to the run's start. Thread-safe (backend threads append)."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.rows: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def append(self, row: Mapping[str, Any]) -> None:
        now = time.time()
        row = dict(row)
        end = float(row.get("end", now) or now)
        wall = float(row.get("wall_time", 0.0) or 0.0)
        start = float(row.get("start", end - wall) or end - wall)
        row["start"], row["end"] = start - self.t0, end - self.t0
        row["task"] = row.pop("task_id", None)
        with self.lock:
            self.rows.append(row)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.rows)


class Progress:
    """A one-line progress report on ``stream``: tasks done, retries and the
    current label of each category. Redrawn in place on a terminal; on a pipe
    or file a line is written at most every ``every`` seconds (and at the end)."""

    def __init__(self, name: str, total: int, stream: TextIO | None = None,
                 every: float = 5.0) -> None:
        self.name = name
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every
        self._last = 0.0

    def update(self, done: int, retries: int, labels: Mapping[str, str], final: bool = False) -> None:
        now = time.monotonic()
        if not (final or self.tty or now - self._last >= self.every):
            return
        self._last = now
        width = 20
        filled = int(width * done / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        text = (f"{self.name:<13} [{bar}] {done}/{self.total} tasks, {retries} retries | "
                + " | ".join(f"{c}: {v}" for c, v in labels.items()))
        if self.tty:
            columns = _terminal_columns(self.stream)
            self.stream.write("\r\x1b[K" + text[:columns - 1] + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _terminal_columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 120


def describe_label(state: Any, last: Mapping[str, float] | None) -> str:
    """Short text for a category's current label: bucket upper bounds when the
    predictor has buckets (``memory ≤ 190/380/650 MB``), else the label of the
    latest first attempt (``1 core, 1000 MB``)."""
    parts = []
    for r in RESOURCES:
        buckets = _bounds(state, r)
        if buckets:
            bounds = "/".join(_fmt(r, upper) for upper in buckets)
            parts.append(f"{r} ≤ {bounds} {UNITS[r]}")
        elif last and r in last:
            parts.append(f"{_fmt(r, last[r])} {UNITS[r]}")
    return ", ".join(parts) or "(no label yet)"


def _bounds(state: Any, resource: str) -> list[float]:
    """Bucket upper bounds of ``resource`` in a predictor's ``describe()``:
    its ``buckets`` entry, a list of (upper bound, probability) pairs or of
    upper bounds; empty when it has none."""
    entry = state.get(resource) if isinstance(state, Mapping) else None
    buckets = entry.get("buckets") if isinstance(entry, Mapping) else None
    return [float(b[0] if isinstance(b, (tuple, list)) else b) for b in buckets or ()]


def _fmt(resource: str, value: float) -> str:
    return f"{value:.2f}" if resource == "cores" else f"{value:.0f}"


def _tree_rss() -> float:
    """Resident memory of this process's descendants, MB (sampled)."""
    total = 0
    for child in psutil.Process().children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total / MB


@dataclass(frozen=True)
class Policy:
    """How the demo labels its calls.

    name : row name in the comparison.
    predictor : the autolabel predictor (``autolabel=True``), or None for a
        plain resource-aware executor (``autolabel=False``).
    declared : resources every call declares (cores, memory MB): the fixed
        guess users write; with ``predictor=None`` they are hard limits, and
        without them a call gets a whole worker, as Parsl's Work Queue
        executor does with ``autolabel=False`` and no resource specification.
    """

    name: str
    predictor: str | None = None
    declared: Mapping[str, float] | None = None

    @property
    def autolabel(self) -> bool:
        return self.predictor is not None


def autolabel(predictor: str) -> Policy:
    """lfm's autolabel with ``predictor``."""
    return Policy(predictor, predictor=predictor)


#: The fixed guess most users declare: 2,000 MB and 1 core per call.
FIXED_GUESS = Policy("fixed-2000MB", declared={"cores": 1.0, "memory": 2000.0})
#: One call per worker: no label, every call takes a whole worker (Parsl's
#: WorkQueueExecutor default, ``autolabel=False`` without specifications).
ONE_PER_WORKER = Policy("one-per-worker")


def run_policy(policy: Policy | str, calls: Sequence[tuple[str, int]], *, backend: str = "local",
               backend_options: Mapping[str, Any] | None = None, in_flight: int | None = None,
               seed: int = 0, progress: bool | TextIO = True, name: str | None = None,
               poll: float = 0.25) -> RunResult:
    """Run ``calls`` (pairs (category, argument) naming functions of
    :data:`lfm.demo.workload.FUNCTIONS`) through an ``AutolabelExecutor``
    labelled by ``policy`` (a :class:`Policy`, or a predictor name for
    autolabel with it) on ``backend``.

    in_flight : calls submitted but not finished at any time (default: twice
        the backend's cores + 2, so calls wait to be packed beside each other).
    progress : True (stderr), False, or a stream for the progress line.
    poll : seconds between samples of the labels and of memory.
    """
    import predictors
    from lfm.executors import AutolabelExecutor

    if isinstance(policy, str):
        policy = autolabel(policy)
    name = name or policy.name
    t0 = time.time()
    recorder = _Recorder(t0)
    capacity = _capacity(backend, backend_options)
    # autolabel=False labels nothing from the predictor, so any cheap one serves
    model = predictors.create(policy.predictor or "whole-machine", resources=RESOURCES, seed=seed,
                              max_resources=capacity)
    stream = None if progress is True else (progress or None)
    bar = Progress(name, len(calls), stream) if progress else None
    label_rows: list[tuple[float, str, str, str, float]] = []
    errors: list[str] = []
    peak = 0.0
    start = time.monotonic()
    with AutolabelExecutor(backend=backend, predictor=model, resources=RESOURCES, trace=recorder,
                           autolabel=policy.autolabel, **dict(backend_options or {})) as ex:
        view = ex.options(resources=policy.declared) if policy.declared else ex
        window = in_flight or 2 * max(1, int(capacity["cores"])) + 2
        pending: set[cf.Future] = set()
        todo = list(calls)
        done = 0
        next_poll = 0.0
        seen_state: dict[str, Any] = {}
        while todo or pending:
            while todo and len(pending) < window:
                category, arg = todo.pop(0)
                pending.add(view.submit(FUNCTIONS[category], arg))
            finished, pending = cf.wait(pending, timeout=poll, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                done += 1
                if future.exception() is not None:
                    errors.append(f"{type(future.exception()).__name__}: {future.exception()}")
            if time.monotonic() >= next_poll or not (todo or pending):
                next_poll = time.monotonic() + poll
                peak = max(peak, _tree_rss())
                _sample_labels(ex, recorder, time.time() - t0, label_rows, seen_state, bar, done)
        makespan = time.monotonic() - start
        stats = ex.stats()
    _sample_labels(ex, recorder, time.time() - t0, label_rows, seen_state, bar, len(calls), final=True)
    attempts = pd.DataFrame(recorder.snapshot())
    if len(attempts):
        # the executor numbers tasks from 1 in submission order: task k is calls[k - 1]
        attempts["arg"] = [calls[int(t) - 1][1] for t in attempts["task"]]
        attempts = attempts.sort_values(["end"]).reset_index(drop=True)
    labels = pd.DataFrame(label_rows, columns=["time", "category", "resource", "kind", "value"])
    return RunResult(name, backend, attempts, labels, stats, makespan, peak, errors)


def _capacity(backend: str, options: Mapping[str, Any] | None) -> dict[str, float]:
    """The largest allocation a worker of ``backend`` offers (cores, memory MB)."""
    options = dict(options or {})
    if backend == "workqueue":
        workers = options.get("workers") or []
        size = options.get("max_resources") or {r: max(float(w[r]) for w in workers) for r in RESOURCES}
    else:
        from lfm.executors import machine_capacity
        size = {**machine_capacity(), **dict(options.get("capacity") or {})}
    return {r: float(size[r]) for r in RESOURCES}


def _sample_labels(ex: Any, recorder: _Recorder, now: float, rows: list, seen: dict[str, Any],
                   bar: Progress | None, done: int, final: bool = False) -> None:
    """Append the labels that changed since the last sample; redraw the progress line."""
    attempts = recorder.snapshot()
    last: dict[str, dict[str, float]] = {}
    retries = 0
    for row in attempts:
        if row.get("attempt") == 1:
            last[row["category"]] = {r: row[f"alloc_{r}"] for r in RESOURCES if f"alloc_{r}" in row}
        elif row.get("attempt"):
            retries += 1
    states = ex.stats()["label"].to_dict() if last else {}
    texts = {}
    for category in sorted(set(last)):
        state = states.get(category)
        state = state if isinstance(state, Mapping) else {}
        key = (repr(state), repr(last[category]))
        if seen.get(category) != key:
            seen[category] = key
            for r in RESOURCES:
                for upper in _bounds(state, r):
                    rows.append((now, category, r, "bucket", float(upper)))
                if r in last[category]:
                    rows.append((now, category, r, "label", float(last[category][r])))
        texts[category] = describe_label(state, last[category])
    if bar is not None:
        bar.update(done, retries, texts, final=final)


def compare(results: Sequence[RunResult]) -> pd.DataFrame:
    """The comparison table, one row per run: policy, makespan (s), tasks,
    attempts, retries, memory AE and cores AE (Σ used·time / Σ allocated·time,
    failed attempts charged their label for the time they ran), peak memory
    of the demo's processes (MB, sampled) and calls that failed for good."""
    rows = []
    for res in results:
        st = res.stats
        row = {"policy": res.policy, "makespan_s": res.makespan, "tasks": res.tasks,
               "attempts": int(st["attempts"].sum()), "retries": int(st["retries"].sum())}
        for r in RESOURCES:
            alloc = float(st[f"alloc_{r}_s"].sum())
            row[f"{r}_AE"] = float(st[f"used_{r}_s"].sum()) / alloc if alloc > 0 else float("nan")
        row["peak_memory_MB"] = res.peak_memory
        row["failed"] = len(res.errors)
        rows.append(row)
    return pd.DataFrame(rows)


def format_comparison(table: pd.DataFrame) -> str:
    """The comparison as plain text with units in the headers."""
    headers = {"policy": "policy", "makespan_s": "makespan (s)", "tasks": "tasks",
               "attempts": "attempts", "retries": "retries", "memory_AE": "memory AE",
               "cores_AE": "cores AE", "peak_memory_MB": "peak memory (MB)", "failed": "failed"}
    formats: dict[str, Callable[[Any], str]] = {
        "makespan_s": lambda v: f"{v:.1f}", "memory_AE": lambda v: f"{v:.3f}",
        "cores_AE": lambda v: f"{v:.3f}", "peak_memory_MB": lambda v: f"{v:.0f}"}
    cols = [c for c in headers if c in table.columns]
    cells = [[headers[c] for c in cols]]
    for _, row in table.iterrows():
        cells.append([formats.get(c, str)(row[c]) for c in cols])
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    lines = []
    for k, r in enumerate(cells):
        lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                               for i, (v, w) in enumerate(zip(r, widths))))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def spotlight(molecules: Sequence[int], interval: float = 0.05) -> list[tuple[str, Any]]:
    """Run a few calls alone under the monitor with snapshots every ``interval``
    seconds: ``inference(0)`` and ``simulate(m)`` for each m. Returns
    (name, Resources) pairs; ``Resources.snapshots`` holds the memory over time."""
    from lfm.demo.workload import inference, simulate
    from lfm.monitor import run_call

    out = []
    for fn, arg in [(inference, 0), *((simulate, m) for m in molecules)]:
        _, res = run_call(fn, (arg,), keep_snapshots=True, interval=interval)
        out.append((f"{fn.__name__}({arg})", res))
    return out

