"""Plots of a replay: what each task used against what the predictor allocated.

One panel per predictor: each task's usage over the task index (dots, coloured by
category), the allocation of its first attempt (grey ticks), failed attempts (red
crosses) and, when the predictor describes buckets, the bucket upper bounds as
they evolve (orange ticks; needs ``replay(..., record_state=k)``). A last panel
compares the absolute efficiency of every predictor.

Readable from 1 to 100+ categories: the :data:`NAMED` biggest categories by
memory·time (Σ usage × wall time, what the efficiency weighs) get their own colour
and name, the rest are drawn in grey as one "other" group. There is one legend for
the whole figure, outside the panels, and the layout is matplotlib's constrained
layout (no ``tight_layout``). The usage axis is logarithmic when the usages span
more than :data:`LOG_SPAN` (1st to 99th percentile), so small categories stay visible.
"""
from __future__ import annotations

import math
from os import PathLike

import numpy as np
import pandas as pd

from predictors.replay import ReplayResult

UNITS = {"memory": "MB", "disk": "MB", "cores": "cores", "wall_time": "s"}
#: Categories named (and coloured) in the plot; the rest are grouped.
NAMED = 8
#: Usage spread (99th / 1st percentile) above which the usage axis is logarithmic.
LOG_SPAN = 30.0
_OTHER = "other"
# tab10 without red and orange, which mark failures and bucket bounds
_PALETTE = (0, 2, 4, 6, 8, 9, 5, 1)


def category_groups(first: pd.DataFrame, named: int = NAMED) -> tuple[list[str], dict[str, str]]:
    """The ``named`` biggest categories by Σ usage × wall time (biggest first) and a map
    category -> its group in the plot (itself, or ``"other"``). ``first``: one row per
    task with ``category``, ``usage``, ``wall_time``."""
    weight = (first["usage"] * first["wall_time"]).groupby(first["category"], sort=False).sum()
    order = weight.sort_values(ascending=False, kind="stable").index.tolist()
    if len(order) <= named:
        top = order
    else:
        top = order[: named - 1]   # keep a slot for "other" within the palette
    groups = {c: (c if c in top else _OTHER) for c in order}
    return top, groups


def _layout(n_panels: int) -> tuple[int, int]:
    ncols = 1 if n_panels <= 2 else 2 if n_panels <= 8 else 3
    return math.ceil(n_panels / ncols), ncols


def plot_replay(result: ReplayResult, path: str | PathLike | None = None, *, title: str = "",
                seed: int | None = None, max_points: int = 20000, named: int = NAMED):
    """Draw ``result`` (from :func:`predictors.replay`) and save it to ``path``
    (PNG, SVG, PDF... by extension) when given; returns the matplotlib Figure.

    seed : which seed's run to draw per predictor (default: each one's first);
        the efficiency panel shows the median over seeds.
    max_points : at most this many tasks are drawn per panel (evenly spaced).
    named : how many categories get their own colour and legend entry (the
        biggest by usage × wall time; the rest are one grey "other" group).
    """
    import matplotlib
    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    resource = result.resources[0]
    unit = UNITS.get(resource, "")
    names = list(dict.fromkeys(result.summary["predictor"]))
    nrows, ncols = _layout(len(names) + 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.4 * ncols, 2.9 * nrows + 0.6), squeeze=False,
                             layout="constrained")
    axes = axes.ravel()

    attempts = result.attempts
    if len(attempts):
        one_run = attempts[(attempts["predictor"] == names[0]) & (attempts["seed"] == attempts["seed"].iloc[0])]
        top, groups = category_groups(one_run[one_run["attempt"] == 0], named)
    else:
        top, groups = [], {}
    n_other = sum(1 for g in groups.values() if g == _OTHER)
    colours = {c: plt.cm.tab10(_PALETTE[i % len(_PALETTE)]) for i, c in enumerate(top)}
    colours[_OTHER] = (0.6, 0.6, 0.6, 1.0)
    positive = attempts["usage"][attempts["usage"] > 0] if len(attempts) else pd.Series(dtype=float)
    low, high = (np.percentile(positive, [1, 99]) if len(positive) else (1.0, 1.0))
    log = bool(len(positive)) and high / max(low, 1e-9) > LOG_SPAN
    top_value = max(float(attempts["allocation"].max()), float(attempts["usage"].max())) if len(attempts) else 1.0
    bottom = max(float(positive.min()) / 1.5, 1e-3) if log else 0.0

    for ax, name in zip(axes, names):
        runs = attempts[attempts["predictor"] == name]
        run_seed = seed if seed is not None else runs["seed"].iloc[0]
        runs = runs[runs["seed"] == run_seed]
        first = runs[runs["attempt"] == 0]
        step = max(1, len(first) // max_points)
        shown = first.iloc[::step]
        group = shown["category"].map(groups).fillna(_OTHER)
        # "other" first, underneath the named categories
        for g in [_OTHER] + top:
            part = shown[group.to_numpy() == g]
            if len(part):
                ax.scatter(part["task"], part["usage"], s=6 if g != _OTHER else 3, color=colours[g],
                           alpha=0.8 if g != _OTHER else 0.4, rasterized=True, zorder=2, linewidths=0)
        ax.scatter(shown["task"], shown["allocation"], marker="_", s=10, lw=0.8, color="0.3",
                   rasterized=True, zorder=3)
        failed = runs[~runs["ok"]]
        if len(failed):
            ax.scatter(failed["task"], failed["allocation"], marker="x", s=12, color="red", lw=0.8, zorder=5)
        states = result.states
        if len(states):
            bounds = states[(states["predictor"] == name) & (states["seed"] == run_seed)
                            & (states["resource"] == resource) & (states["key"] == "buckets")]
            if len(bounds):
                ax.scatter(bounds["task"], bounds["value"], marker="_", s=40, color="darkorange", lw=1.5,
                           zorder=4)
        row = result.summary[(result.summary["predictor"] == name) & (result.summary["seed"] == run_seed)].iloc[0]
        ax.set_title(f"{name}: AE_time {row['AE_time']:.3f}, {int(row['retries'])} retries", fontsize=9)
        ax.set_xlabel("task index", fontsize=8)
        ax.set_ylabel(f"{resource} ({unit})", fontsize=8)
        ax.tick_params(labelsize=7)
        if log:
            ax.set_yscale("log")
            ax.set_ylim(bottom, top_value * 1.5)
        else:
            ax.set_ylim(0, top_value * 1.05)

    ax = axes[len(names)]
    med = result.summary.groupby("predictor", sort=False)[["AE_time", "AE_count"]].median().reindex(names)
    y = np.arange(len(names))
    ax.barh(y - 0.2, med["AE_time"], height=0.4, color="tab:blue")
    ax.barh(y + 0.2, med["AE_count"], height=0.4, color="tab:cyan")
    for yi, v in zip(y, med["AE_time"]):
        ax.text(v + 0.01, yi - 0.2, f"{v:.3f}", va="center", fontsize=7)
    ax.set_yticks(y, names, fontsize=7 if len(names) > 8 else 8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.15)
    ax.set_xlabel("absolute efficiency (used / allocated)", fontsize=8)
    ax.set_title("efficiency per predictor (median over seeds)", fontsize=9)
    ax.tick_params(labelsize=7)
    for ax in axes[len(names) + 1:]:
        ax.set_visible(False)

    def dot(colour, label):
        return Line2D([], [], ls="", marker="o", ms=4, color=colour, label=label)

    handles = [dot(colours[c], _short(c)) for c in top]
    if n_other:
        handles.append(dot(colours[_OTHER], f"{n_other} other categories"))
    if len(top) == 1 and not n_other:
        handles = [dot(colours[top[0]], f"usage ({_short(top[0])})")]
    handles.append(Line2D([], [], ls="", marker="_", ms=7, mew=1.2, color="0.3", label="first allocation"))
    if len(attempts) and not attempts["ok"].all():
        handles.append(Line2D([], [], ls="", marker="x", ms=5, color="red", label="failed attempt"))
    if len(result.states) and (result.states["key"] == "buckets").any():
        handles.append(Line2D([], [], ls="", marker="_", ms=9, mew=2, color="darkorange",
                              label="bucket upper bounds"))
    handles += [Line2D([], [], ls="", marker="s", ms=6, color="tab:blue", label="AE (time-weighted)"),
                Line2D([], [], ls="", marker="s", ms=6, color="tab:cyan", label="AE (count-weighted)")]
    per_row = max(2, int(6.4 * ncols // 2.6))   # legend entries of ~2.6 in. across the figure's width
    legend_title = None
    if n_other:
        legend_title = f"categories: the {len(top)} biggest by {resource}·time, the rest grouped"
    elif len(top) > 1:
        legend_title = f"categories ({len(top)})"
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), per_row), fontsize=8,
               frameon=False, title=legend_title, title_fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig


def _short(name: object, limit: int = 26) -> str:
    """A category name that fits a legend entry: its end is kept (Nextflow's
    ``PIPELINE:WORKFLOW:PROCESS`` names differ at the end)."""
    text = str(name)
    return text if len(text) <= limit else "…" + text[-(limit - 1):]
