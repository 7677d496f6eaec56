"""Replay every predictor over the public traces and synthetic workloads, beside the
reference (cctools' own C implementation, ``../shared/anchors/cctools-replay.csv``).

Same semantics and metrics as the reference (``predictors.replay``): memory only,
usage rounded up to whole MB, tasks in file order, sequential. WfCommons traces
are replayed with memory in the reference's decimal MB (10**6 bytes; see ``load``). Probabilistic
predictors: median over seeds 1-5 (``--quick``: seed 1 only); a predictor whose
seeds 1 and 2 give identical results is deterministic ("det" in the seeds column)
and not run again.

Tables: per trace and grouping, AE_time / AE_count / retries / tasks per second
with the reference values of the counterpart algorithm; per synthetic kind; and
a verdict table for the targets: our greedy and exhaustive at least match the
reference ones, our best predictor beats the best reference algorithm, and every
predictor replays lobsterCMSsimulation at >= 20,000 tasks/s.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import predictors

SHARED = Path(os.environ.get("LFM_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
TRACES = ["bioblast.csv", "lobsterCMSsimulation.csv", "lobsterCMSsimulation.csv[:4000]",
          "blast-medium-001.json", "bwa-small-001.json"]
#: our name -> the reference algorithm in the anchors
REFERENCE = {"greedy": "greedy", "exhaustive": "exhaust", "greedy-det": "det_greedy",
             "exhaustive-det": "det_exhaust", "min-waste": "tovar_min_waste",
             "max-throughput": "tovar_max_throughput", "tovar-max": "tovar_max",
             "whole-machine": "whole_machine", "max-seen": "max_seen", "oracle": "oracle"}
SPEED_TARGET = 20_000.0     # tasks/s on lobsterCMSsimulation
SPEED_TRACE = "lobsterCMSsimulation.csv"
TOLERANCE = 5e-5            # the anchors are rounded to 4 decimals
MB_BYTES = 2 ** 20


def load(name: str) -> pd.DataFrame:
    """A public trace (``name[:N]``: its first N tasks), in the reference's units."""
    from lfm.trace import read_trace
    base, _, cut = name.partition("[:")
    df = read_trace(SHARED / "traces" / base)
    if base.endswith(".json"):
        # The reference converted WfCommons' memoryInBytes with 1 MB = 10**6 bytes
        # (its whole_machine, max_seen and Tovar rows match exactly only so); lfm's
        # MB is 2**20 bytes. Replay in the reference's unit so the numbers compare.
        df = df.assign(memory=df["memory"] * MB_BYTES / 1e6)
    return df.iloc[: int(cut.rstrip("]"))] if cut else df


def run(df: pd.DataFrame, name: str, group_by: str | None, seeds: list[int]) -> dict:
    """Median metrics over seeds (one run if the first two seeds agree)."""
    rows = []
    for k, seed in enumerate(seeds):
        s = predictors.replay(df, name, group_by=group_by, seed=seed).summary.iloc[0]
        rows.append(s)
        if k == 1 and all(rows[0][c] == rows[1][c] for c in ("AE_time", "AE_count", "retries")):
            break
    frame = pd.DataFrame(rows)
    deterministic = len(rows) == 2
    speed = float(frame["tasks_per_s"].median())
    if deterministic:
        frame = frame.iloc[:1]
    # standard error of the median AE over seeds (≈ 1.25 σ/√n): a probabilistic
    # predictor's draws cannot reproduce cctools' random sequence, so a difference
    # within this noise is not a shortfall of the algorithm
    noise = 0.0 if len(frame) < 2 else float(1.25 * frame["AE_time"].std(ddof=1) / np.sqrt(len(frame)))
    return {"predictor": name, "seeds": "det" if deterministic else len(rows),
            **{c: float(frame[c].median()) for c in ("AE_time", "AE_count", "retries", "tasks_retried")},
            "AE_time_se": noise, "tasks_per_s": speed}


class _ConstantState:
    def first(self) -> float:
        return 1e9

    def retry(self, previous: float) -> float:
        return previous * 2

    def observe(self, value: float) -> None:
        pass


class _Constant(predictors.Predictor):
    """Always the same allocation: measures what the replay loop and the base
    class's validation cost per task, without any policy."""

    def __init__(self, resources=("memory",), max_resources=None, seed=0) -> None:
        super().__init__(resources, max_resources, seed)

    def _new_state(self, resource: str) -> _ConstantState:
        return _ConstantState()


def overhead(df: pd.DataFrame) -> float:
    """Replay loop cost in microseconds per task (best of 3)."""
    return min(predictors.replay(df, _Constant()).summary.iloc[0]["seconds"] for _ in range(3)) / len(df) * 1e6


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    seeds = [1] if quick else [1, 2, 3, 4, 5]
    names = predictors.available()
    anchors_path = SHARED / "anchors" / "cctools-replay.csv"
    anchors = pd.read_csv(anchors_path) if anchors_path.exists() else pd.DataFrame(
        columns=["trace", "grouping", "algorithm", "AE_time", "AE_count", "retries", "tasks_retried"])
    pd.set_option("display.width", 200)
    verdicts = []
    speeds: dict[str, float] = {}

    for trace in TRACES:
        try:
            df = load(trace)
        except Exception as exc:  # a missing file or importer must not stop the other traces
            print(f"\n{trace}: skipped ({type(exc).__name__}: {exc})")
            continue
        for grouping, group_by in (("per-category", "category"), ("one", None)):
            started = time.perf_counter()
            rows = [run(df, n, group_by, seeds if n != "oracle" else seeds[:1]) for n in names]
            table = pd.DataFrame(rows)
            ref = anchors[(anchors.trace == trace) & (anchors.grouping == grouping)].set_index("algorithm")
            table["reference"] = table["predictor"].map(REFERENCE).fillna("")
            for col in ("AE_time", "AE_count", "retries"):
                table["ref_" + col] = table["reference"].map(ref[col]) if len(ref) else np.nan
            print(f"\n{trace}, {grouping}: {len(df)} tasks, seeds {seeds if not quick else [1]} "
                  f"({time.perf_counter() - started:.1f} s)")
            print(_fmt(table).to_string(index=False))
            if trace == SPEED_TRACE:
                if group_by:
                    print(f"replay loop alone (constant predictor, base-class validation included): "
                          f"{overhead(df):.1f} us/task")
                for r in rows:
                    speeds[r["predictor"]] = min(speeds.get(r["predictor"], np.inf), r["tasks_per_s"])
            verdicts.append(_verdict(trace, grouping, table, ref))

    kinds = list(predictors.SYNTHETIC_KINDS)
    n = 1000 if quick else 3000
    rows = []
    for kind in kinds:
        df = predictors.synthetic(kind, n, seed=0)
        rows += [{"kind": kind, **run(df, name, "category", seeds if name != "oracle" else seeds[:1])}
                 for name in names]
    syn = pd.DataFrame(rows)
    print(f"\nsynthetic workloads ({n} tasks, one category): AE_time")
    pivot = syn.pivot(index="predictor", columns="kind", values="AE_time")
    best = pivot.drop("oracle", errors="ignore").idxmax()
    print(pivot.round(4).to_string())
    print("best (not oracle): " + ", ".join(f"{k}: {v}" for k, v in best.items()))

    print("\nverdicts (AE_time; the reference rounded to 4 decimals)")
    print(pd.DataFrame(verdicts).to_string(index=False))
    if speeds:
        slowest = min(speeds, key=speeds.get)
        ok = speeds[slowest] >= SPEED_TARGET
        print(f"\nspeed on {SPEED_TRACE}: slowest predictor {slowest} at {speeds[slowest]:,.0f} tasks/s "
              f"(target >= {SPEED_TARGET:,.0f}): {'ok' if ok else 'MISS'}")
        below = sorted(n for n, v in speeds.items() if v < SPEED_TARGET)
        if below:
            print(f"below target: {', '.join(below)}")
    sys.stdout.flush()


def _verdict(trace: str, grouping: str, table: pd.DataFrame, ref: pd.DataFrame) -> dict:
    ours = table.set_index("predictor")["AE_time"]
    noise = table.set_index("predictor")["AE_time_se"]
    out = {"trace": trace, "grouping": grouping}
    for name, algo in (("greedy", "greedy"), ("exhaustive", "exhaust"),
                       ("greedy-det", "det_greedy"), ("exhaustive-det", "det_exhaust")):
        if name in ours and algo in ref.index:
            d = ours[name] - ref.loc[algo, "AE_time"]
            if d >= -TOLERANCE:
                verdict = "ok"
            elif d >= -TOLERANCE - 2 * noise[name]:
                verdict = f"ok within seed noise (2 s.e. = {2 * noise[name]:.4f})"
            else:
                verdict = "MISS"
            out[f"{name}>=ref"] = f"{verdict} ({d:+.4f})"
        else:
            out[f"{name}>=ref"] = "n/a"
    candidates = ours.drop("oracle", errors="ignore")
    best = candidates.idxmax()
    ref_best = ref.drop("oracle", errors="ignore")["AE_time"]
    if len(ref_best):
        d = candidates[best] - ref_best.max()
        out["best>=ref best"] = (f"{'ok' if d >= -TOLERANCE else 'MISS'} ({best} {candidates[best]:.4f} "
                                 f"vs {ref_best.idxmax()} {ref_best.max():.4f})")
    else:
        out["best>=ref best"] = f"n/a ({best} {candidates[best]:.4f})"
    return out


def _fmt(table: pd.DataFrame) -> pd.DataFrame:
    t = table.copy()
    for col in ("AE_time", "AE_count", "ref_AE_time", "ref_AE_count"):
        t[col] = t[col].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    for col in ("retries", "tasks_retried", "ref_retries"):
        t[col] = t[col].map(lambda v: "" if pd.isna(v) else f"{v:g}")
    t["tasks_per_s"] = t["tasks_per_s"].map(lambda v: f"{v:,.0f}")
    return t[["predictor", "seeds", "AE_time", "AE_count", "retries", "tasks_retried", "tasks_per_s",
              "reference", "ref_AE_time", "ref_AE_count", "ref_retries"]]


if __name__ == "__main__":
    main(sys.argv[1:])
