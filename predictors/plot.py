"""Plots of a replay: what each task used against what the predictor allocated.

One panel per predictor: each task's usage over the task index (dots, coloured by
category), the allocation of its first attempt (grey ticks), failed attempts (red
crosses) and, when the predictor describes buckets, the bucket upper bounds as
they evolve (orange ticks; needs ``replay(..., record_state=k)``). A last panel
compares the absolute efficiency of every predictor.
"""
from __future__ import annotations

import math
from os import PathLike

import numpy as np

from predictors.replay import ReplayResult

UNITS = {"memory": "MB", "disk": "MB", "cores": "cores", "wall_time": "s"}


def plot_replay(result: ReplayResult, path: str | PathLike | None = None, *, title: str = "",
                seed: int | None = None, max_points: int = 20000):
    """Draw ``result`` (from :func:`predictors.replay`) and save it to ``path``
    (PNG, SVG, PDF... by extension) when given; returns the matplotlib Figure.

    seed : which seed's run to draw per predictor (default: each one's first);
        the efficiency panel shows the median over seeds.
    max_points : at most this many tasks are drawn per panel (evenly spaced).
    """
    import matplotlib
    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    resource = result.resources[0]
    unit = UNITS.get(resource, "")
    names = list(dict.fromkeys(result.summary["predictor"]))
    n_panels = len(names) + 1
    ncols = 1 if n_panels <= 2 else 2
    nrows = math.ceil(n_panels / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(8.5 * ncols, 3.2 * nrows), squeeze=False)
    axes = axes.ravel()

    attempts = result.attempts
    categories = list(dict.fromkeys(attempts["category"])) if len(attempts) else []
    palette = [plt.cm.tab10(i) for i in (0, 2, 4, 6, 8, 9, 5, 7)]   # no red/orange: used below
    colours = {c: palette[i % len(palette)] for i, c in enumerate(categories)}
    top = max(float(attempts["allocation"].max()), float(attempts["usage"].max())) if len(attempts) else 1.0

    for ax, name in zip(axes, names):
        runs = attempts[attempts["predictor"] == name]
        run_seed = seed if seed is not None else runs["seed"].iloc[0]
        runs = runs[runs["seed"] == run_seed]
        first = runs[runs["attempt"] == 0]
        step = max(1, len(first) // max_points)
        shown = first.iloc[::step]
        for cat, group in shown.groupby("category", sort=False):
            suffix = f" ({cat})" if len(categories) > 1 else ""
            ax.scatter(group["task"], group["usage"], s=3, color=colours[cat], alpha=0.5,
                       label="usage" + suffix, rasterized=True, zorder=2)
        ax.scatter(shown["task"], shown["allocation"], marker="_", s=10, lw=0.8, color="0.3",
                   label="first allocation", rasterized=True, zorder=3)
        failed = runs[~runs["ok"]]
        if len(failed):
            ax.scatter(failed["task"], failed["allocation"], marker="x", s=12, color="red", lw=0.8,
                       label=f"failed attempt ({len(failed)})", zorder=5)
        states = result.states
        if len(states):
            bounds = states[(states["predictor"] == name) & (states["seed"] == run_seed)
                            & (states["resource"] == resource) & (states["key"] == "buckets")]
            if len(bounds):
                ax.scatter(bounds["task"], bounds["value"], marker="_", s=40, color="darkorange", lw=1.5,
                           label="bucket upper bounds", zorder=4)
        row = result.summary[(result.summary["predictor"] == name) & (result.summary["seed"] == run_seed)].iloc[0]
        ax.set_title(f"{name}: AE_time {row['AE_time']:.3f}, {int(row['retries'])} retries", fontsize=10)
        ax.set_xlabel("task index")
        ax.set_ylabel(f"{resource} ({unit})")
        ax.set_ylim(0, top * 1.05)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), markerscale=2, frameon=False)

    ax = axes[len(names)]
    med = result.summary.groupby("predictor", sort=False)[["AE_time", "AE_count"]].median().reindex(names)
    y = np.arange(len(names))
    ax.barh(y - 0.2, med["AE_time"], height=0.4, label="AE (time-weighted)")
    ax.barh(y + 0.2, med["AE_count"], height=0.4, label="AE (count-weighted)")
    for yi, v in zip(y, med["AE_time"]):
        ax.text(v + 0.01, yi - 0.2, f"{v:.3f}", va="center", fontsize=7)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.45)
    ax.set_xlabel("absolute efficiency (used / allocated)")
    ax.set_title("efficiency per predictor (median over seeds)", fontsize=10)
    ax.legend(fontsize=7, loc="center right")
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
