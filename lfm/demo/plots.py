"""The demo's plots (matplotlib, Agg backend: files only, no window).

* :func:`plot_labels_over_time` — per category and resource: what each
  attempt used, the label it ran with, exhausted attempts and the
  predictor's bucket upper bounds, over the run's time.
* :func:`plot_call_memory` — memory over time of a few calls, from the
  monitor's snapshots, with their exact peaks.
* :func:`plot_efficiency` — memory and cores absolute efficiency and
  makespan per policy.

Each function saves a PNG and returns its path. Units: memory MB, cores,
time s.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from lfm.demo.runs import RESOURCES, UNITS, RunResult  # noqa: E402

DPI = 110


def plot_labels_over_time(result: RunResult, path: str | Path) -> Path:
    """One panel per (resource, category) of ``result``: measured usage of
    successful attempts (dots), the label each attempt ran with (grey bars from
    its start to its end), exhausted attempts (red crosses at the label they
    exceeded, in the panel of the resource they exceeded) and the bucket upper bounds (orange steps), against the time
    since the run started (s)."""
    attempts, labels = result.attempts, result.labels
    categories = sorted(attempts["category"].unique()) if len(attempts) else []
    fig, axes = plt.subplots(len(RESOURCES), max(1, len(categories)), squeeze=False,
                             figsize=(6.2 * max(1, len(categories)), 3.6 * len(RESOURCES)))
    end = float(attempts["end"].max()) if len(attempts) else 1.0
    for i, resource in enumerate(RESOURCES):
        for j, category in enumerate(categories):
            ax = axes[i][j]
            rows = attempts[attempts["category"] == category]
            alloc = rows.get(f"alloc_{resource}")
            if alloc is not None:
                ax.hlines(alloc, rows["start"], rows["end"], color="0.6", lw=3.0, alpha=0.6,
                          zorder=1, label="label while running")
            ok = rows[rows["status"] == "ok"]
            ax.scatter(ok["end"], ok[resource], s=12, color="tab:blue", zorder=3,
                       label="measured (ok)")
            over = rows[rows["status"] == "exhausted"]
            over = over[[resource in _names(e) for e in over.get("exceeded", [])]] \
                if "exceeded" in over else over.iloc[0:0]
            if len(over) and alloc is not None:
                ax.scatter(over["end"], over[f"alloc_{resource}"], marker="x", s=40,
                           color="red", zorder=4, label=f"label exceeded, retried ({len(over)})")
            _bucket_steps(ax, labels, category, resource, end)
            ax.set_title(f"{category}: {resource}", fontsize=10)
            ax.set_xlabel("time since the run started (s)")
            ax.set_ylabel(f"{resource} ({UNITS[resource]})")
            ax.set_xlim(0, end * 1.02)
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"{result.policy} on the {result.backend} backend: usage, labels and bucket bounds")
    return _save(fig, path)


def _bucket_steps(ax: Any, labels: pd.DataFrame, category: str, resource: str, end: float) -> None:
    """Each sample of the bucket upper bounds holds until the next sample."""
    rows = labels[(labels["category"] == category) & (labels["resource"] == resource)
                  & (labels["kind"] == "bucket")] if len(labels) else labels
    if not len(rows):
        return
    times = sorted(rows["time"].unique())
    first = True
    for k, t in enumerate(times):
        until = times[k + 1] if k + 1 < len(times) else end
        bounds = rows[rows["time"] == t]["value"]
        ax.hlines(bounds, t, until, color="darkorange", lw=1.2, zorder=2,
                  label="bucket upper bounds" if first else None)
        first = False


def _names(exceeded: Any) -> list[str]:
    """The exceeded resources of a trace row: a list, or its text in a CSV."""
    if isinstance(exceeded, str):
        return [n.strip(" '\"") for n in exceeded.strip("[]").split(",") if n.strip()]
    return list(exceeded) if isinstance(exceeded, (list, tuple)) else []


def plot_call_memory(calls: Sequence[tuple[str, Any]], path: str | Path) -> Path:
    """Resident memory (MB) over the time since each call started (s), from the
    monitor's snapshots (``Resources.snapshots``); a dashed line marks each
    call's exact peak (kernel high-water mark), which sampling can miss."""
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    for k, (name, res) in enumerate(calls):
        colour = plt.cm.tab10(k % 10)
        snaps = [s for s in (res.snapshots or []) if not s.get("final")]
        ax.plot([0.0] + [s["time"] for s in snaps], [0.0] + [s["memory"] for s in snaps],
                color=colour, lw=1.5, marker=".", ms=3, label=f"{name}: peak {res['memory']:.0f} MB")
        ax.axhline(res["memory"], color=colour, ls="--", lw=0.9)
    ax.set_title("memory of single calls over time (monitor snapshots; dashed: exact peak)")
    ax.set_xlabel("time since the call started (s)")
    ax.set_ylabel("resident memory (MB)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, path)


def plot_efficiency(table: pd.DataFrame, path: str | Path) -> Path:
    """Left: memory and cores absolute efficiency (Σ used·time / Σ
    allocated·time) per policy; right: makespan (s) per policy, annotated with
    its retries. ``table`` is :func:`lfm.demo.runs.compare`'s."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    policies = list(table["policy"])
    x = range(len(policies))
    width = 0.38
    for k, resource in enumerate(RESOURCES):
        values = table[f"{resource}_AE"].to_numpy()
        pos = [i + (k - 0.5) * width for i in x]
        bars = left.bar(pos, values, width=width, label=f"{resource} AE")
        left.bar_label(bars, fmt="%.3f", fontsize=8)
    left.set_xticks(list(x), policies)
    left.set_ylim(0, 1.1)
    left.set_ylabel("absolute efficiency (used / allocated)")
    left.set_title("efficiency per policy (higher is better)")
    left.legend(fontsize=8)
    bars = right.bar(list(x), table["makespan_s"], color="tab:gray", width=0.5)
    right.bar_label(bars, labels=[f"{m:.1f} s, {r} retries" for m, r in
                                  zip(table["makespan_s"], table["retries"])], fontsize=8)
    right.set_xticks(list(x), policies)
    right.set_ylabel("makespan (s)")
    right.set_ylim(0, float(table["makespan_s"].max()) * 1.2 if len(table) else 1)
    right.set_title("makespan per policy (lower is better)")
    fig.suptitle("the same workflow under each labelling policy")
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
