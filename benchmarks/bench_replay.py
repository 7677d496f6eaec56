"""Replay every registered predictor over the public traces and a fixed synthetic suite,
beside the reference, and give ``auto``'s verdict against the best reference on each.

Semantics and metrics are the reference's (``predictors.replay``; ``../shared/anchors/README.md``):
memory only, usage rounded up to whole MB, tasks in file order, sequential, per category
(the public traces also as one group). WfCommons traces are replayed with memory in the
reference's decimal MB (10**6 bytes; see ``load``).

- Seeds: probabilistic predictors report the median over seeds 1-5 (``--quick``: seed 1);
  a predictor whose seeds 1 and 2 agree is deterministic ("det") and not run again.
- Retry cost: every trace is also replayed with ``retry_cost`` = :data:`RETRY_COST` s per
  failed attempt (dispatch and queueing); ``AE_time_rc`` is AE_time with it. Predictors
  that take a ``retry_cost`` parameter (``auto``, ``adaptive``) are given it for that run,
  so they optimise for it; the others behave the same and are charged it.
- Reference: the anchors (``cctools-replay.csv``: cctools' own C code) where they cover a
  trace; elsewhere, and for AE_time_rc everywhere, the best of lfm's implementations of the
  reference policies (:data:`REFERENCE_POLICIES`, feature-less, with the defaults whose
  agreement with the anchors the verdicts below check), computed here.
- ``auto``'s verdict compares its own AE_time with the best reference *algorithm* on that
  trace; selection among policies happens inside ``auto``, never by picking the best row
  afterwards. When ``auto`` is not registered the verdict reads "auto not registered".
- Speed: every feature-less predictor on every public trace of >= 1,000 tasks
  (:data:`SPEED_TARGET` tasks/s), ``auto`` on lobsterCMSsimulation (:data:`AUTO_SPEED_TARGET`),
  judged twice: on tasks per CPU second of this process (what the code costs) and on plain
  wall-clock tasks/s (what a user waits; on a shared machine it also measures the others' load,
  so the load average is printed with it).

The synthetic suite is ``predictors.synthetic.SUITE`` (kind, tasks, seed): stationary,
phase-changing, growing, heavy-tailed, many-category and input-size-correlated workloads,
and a Nextflow-like pipeline of many processes whose memory follows their inputs or not.
Without ``--quick`` (or with ``--no-data-seeds``) ``auto`` is also judged on
:data:`DATA_SEEDS` independent draws of every member (:func:`data_seed_verdicts`), with
which candidates it ends up following.

    python -m benchmarks replay [--quick] [--no-data-seeds]
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import predictors
from predictors.replay_tasks import machine_size
from predictors.synthetic import SUITE

SHARED = Path(os.environ.get("LFM_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
TRACES = ["bioblast.csv", "lobsterCMSsimulation.csv", "lobsterCMSsimulation.csv[:4000]",
          "blast-medium-001.json", "bwa-small-001.json"]
#: our name -> the reference algorithm in the anchors
REFERENCE = {"greedy": "greedy", "exhaustive": "exhaust", "greedy-det": "det_greedy",
             "exhaustive-det": "det_exhaust", "min-waste": "tovar_min_waste",
             "max-throughput": "tovar_max_throughput", "tovar-max": "tovar_max",
             "quantized": "quantized1", "quantized-10": "quantized10", "whole-machine": "whole_machine",
             "max-seen": "max_seen", "oracle": "oracle"}
#: lfm's implementations of the reference policies: the computed reference where no anchor is given
REFERENCE_POLICIES = ("greedy", "exhaustive", "greedy-det", "exhaustive-det", "min-waste", "max-throughput",
                      "tovar-max", "quantized", "quantized-10", "whole-machine", "max-seen")
RETRY_COST = 30.0           # s charged per failed attempt in the AE_time_rc columns
SPEED_TARGET = 20_000.0     # tasks/s, every feature-less predictor on every public trace of >= SPEED_MIN_TASKS
AUTO_SPEED_TARGET = 10_000.0  # tasks/s, auto on lobsterCMSsimulation
SPEED_MIN_TASKS = 1000
DATA_SEEDS = [0, 1, 2, 3, 4]  # independent draws of every suite member for auto's verdicts (not --quick)
DATA_SEED_TASKS = 1000        # tasks per draw: short traces are where selection has least time to pay
SHORT_WALL = 1.0              # s per task in the short-task draws: a retry cost 30x what a task runs
FEATURE_AWARE = ("auto", "regression")
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


def takes_retry_cost(name: str) -> bool:
    """Does the predictor ``name`` optimise for a ``retry_cost`` parameter?"""
    try:
        predictors.create(name, retry_cost=RETRY_COST)
    except TypeError:
        return False
    return True


def _summary(df: pd.DataFrame, name: str, group_by: str | None, seed: int, retry_cost: float) -> pd.Series:
    """The replay's summary row, plus ``cpu_tasks_per_s``: tasks per CPU second of this
    process in the replay loop (the call's CPU time times the loop's share of the call's
    wall time, so the summaries built after the loop are left out), which unlike the
    wall-clock ``tasks_per_s`` is not slowed by other processes on a shared machine."""
    params = {"retry_cost": retry_cost} if retry_cost and takes_retry_cost(name) else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    row = predictors.replay(df, name, group_by=group_by, seed=seed, retry_cost=retry_cost,
                            params=params).summary.iloc[0].copy()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    loop_cpu = cpu * min(1.0, row["seconds"] / wall) if wall > 0 else 0.0
    row["cpu_tasks_per_s"] = row["tasks"] / loop_cpu if loop_cpu > 0 else float("inf")
    return row


def run(df: pd.DataFrame, name: str, group_by: str | None, seeds: list[int]) -> dict:
    """Median metrics over seeds (one run if the first two seeds agree), without and with the retry cost."""
    rc_param = takes_retry_cost(name)
    rows = []
    deterministic = False
    for k, seed in enumerate(seeds):
        with_rc = _summary(df, name, group_by, seed, RETRY_COST)
        plain = _summary(df, name, group_by, seed, 0.0) if rc_param else None
        row = {"AE_time": with_rc["AE_time_plain"] if plain is None else plain["AE_time"],
               "AE_count": (plain if plain is not None else with_rc)["AE_count"],
               "retries": (plain if plain is not None else with_rc)["retries"],
               "tasks_retried": (plain if plain is not None else with_rc)["tasks_retried"],
               "AE_time_rc": with_rc["AE_time"], "retries_rc": with_rc["retries"],
               "tasks_per_s": (plain if plain is not None else with_rc)["tasks_per_s"],
               "cpu_tasks_per_s": (plain if plain is not None else with_rc)["cpu_tasks_per_s"]}
        rows.append(row)
        if k == 1 and all(rows[0][c] == rows[1][c] for c in ("AE_time", "AE_count", "retries", "AE_time_rc")):
            deterministic = True
            break
    frame = pd.DataFrame(rows)
    speed = float(frame["tasks_per_s"].median())
    cpu_speed = float(frame["cpu_tasks_per_s"].max())   # the least disturbed run
    if deterministic:
        frame = frame.iloc[:1]
    # standard error of the median AE over seeds (~1.25 sigma/sqrt(n)): a probabilistic
    # predictor's draws cannot reproduce cctools' random sequence, so a difference
    # within this noise is not a shortfall of the algorithm
    noise = 0.0 if len(frame) < 2 else float(1.25 * frame["AE_time"].std(ddof=1) / np.sqrt(len(frame)))
    out = {"predictor": name, "seeds": "det" if deterministic else len(frame)}
    out.update({c: float(frame[c].median()) for c in frame.columns if c not in ("tasks_per_s", "cpu_tasks_per_s")})
    return out | {"AE_time_se": noise, "tasks_per_s": speed, "cpu_tasks_per_s": cpu_speed}


class _ConstantState:
    def first(self, features=None) -> float:
        return 1e9

    def retry(self, previous: float, features=None) -> float:
        return previous * 2

    def observe(self, value: float, obs=None) -> None:
        pass


class _Constant(predictors.Predictor):
    """Always the same allocation: measures what the replay loop and the base
    class's validation cost per task, without any policy."""

    def _new_state(self, resource: str) -> _ConstantState:
        return _ConstantState()


def overhead(df: pd.DataFrame) -> float:
    """Replay loop cost in microseconds per task (best of 3)."""
    return min(predictors.replay(df, _Constant()).summary.iloc[0]["seconds"] for _ in range(3)) / len(df) * 1e6


def _reference_best(table: pd.DataFrame, ref: pd.DataFrame, column: str) -> tuple[str, float, str]:
    """(algorithm, AE, source) of the best reference on one trace and grouping."""
    if column == "AE_time" and len(ref):
        best = ref.drop("oracle", errors="ignore")["AE_time"]
        return best.idxmax(), float(best.max()), "anchors"
    ours = table.set_index("predictor")[column].reindex(list(REFERENCE_POLICIES)).dropna()
    return ours.idxmax(), float(ours.max()), "computed"


def auto_verdict(trace: str, grouping: str, table: pd.DataFrame, ref: pd.DataFrame) -> dict:
    """``auto`` against the best reference, without and with the retry cost."""
    out = {"trace": trace, "grouping": grouping}
    rows = table.set_index("predictor")
    for column, label in (("AE_time", "auto vs best ref"), ("AE_time_rc", f"with retry_cost {RETRY_COST:g} s")):
        algo, best, source = _reference_best(table, ref, column)
        if "auto" not in rows.index:
            out[label] = f"auto not registered (best ref {algo} {best:.4f})"
            continue
        d = rows.loc["auto", column] - best
        out[label] = (f"{'ok' if d >= -TOLERANCE else 'MISS'} {rows.loc['auto', column]:.4f} vs "
                      f"{algo} {best:.4f} [{source}] ({d:+.4f})")
    return out


def anchor_verdict(trace: str, grouping: str, table: pd.DataFrame, ref: pd.DataFrame) -> dict:
    """lfm's bucketing algorithms against cctools' own on the anchor rows."""
    ours = table.set_index("predictor")["AE_time"]
    noise = table.set_index("predictor")["AE_time_se"]
    out = {"trace": trace, "grouping": grouping}
    for name, algo in (("greedy", "greedy"), ("exhaustive", "exhaust"), ("greedy-det", "det_greedy"),
                       ("exhaustive-det", "det_exhaust"), ("quantized", "quantized1"),
                       ("quantized-10", "quantized10")):
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
    return out


def _replay_all(df: pd.DataFrame, names: list[str], group_by: str | None, seeds: list[int]) -> pd.DataFrame:
    return pd.DataFrame([run(df, n, group_by, seeds if n != "oracle" else seeds[:1]) for n in names])


def _leaders(p: predictors.Predictor) -> str:
    """How many categories each candidate leads at the end of a replay of ``auto``."""
    counts: dict[str, int] = {}
    for lead in p.leaders().values():
        for name in lead.values():
            counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{n} {c}" for n, c in sorted(counts.items(), key=lambda kv: -kv[1]))


def judge_auto(df: pd.DataFrame, retry_cost: float, auto_params: dict | None = None) -> dict:
    """``auto`` against the best reference policy on one trace (per category, memory):
    the reference policies as in the main tables (the probabilistic ones median over
    seeds 1-3), ``auto`` with seed 1 (and ``auto_params``, e.g. ``{"wall_halflife": 0}``);
    both with ``retry_cost`` (s per failed attempt) charged, and given to ``auto`` to
    optimise. Returns auto's AE_time, the best reference and its AE_time, their
    difference, the verdict and which candidates ``auto`` ends up following."""
    refs = {}
    for name in REFERENCE_POLICIES:
        runs = [1, 2, 3] if name in ("greedy", "exhaustive") else [1]
        refs[name] = float(np.median([predictors.replay(df, name, seed=s, retry_cost=retry_cost)
                                      .summary.iloc[0]["AE_time"] for s in runs]))
    best = max(refs, key=refs.get)
    machine = {"memory": machine_size("memory", np.ceil(df["memory"].to_numpy(float)))}
    auto = predictors.create("auto", seed=1, max_resources=machine, retry_cost=retry_cost, **(auto_params or {}))
    got = float(predictors.replay(df, auto, retry_cost=retry_cost).summary.iloc[0]["AE_time"])
    d = got - refs[best]
    return {"auto": round(got, 4), "best_ref": best, "best_ref_AE": round(refs[best], 4), "diff": round(d, 4),
            "verdict": "ok" if d >= -TOLERANCE else "MISS", "auto_leads": _leaders(auto)}


def data_seed_verdicts(n: int, data_seeds: list[int], retry_cost: float,
                       wall: float | None = None) -> pd.DataFrame:
    """:func:`judge_auto` on several independently drawn instances (data seeds) of
    every suite member, so that no verdict rests on one draw. ``wall``: every task's
    wall time in s instead of the drawn one (short tasks, where a retry cost is many
    times what a task runs)."""
    rows = []
    for kind, _, _ in SUITE:
        for data_seed in data_seeds:
            df = predictors.synthetic(kind, n, seed=data_seed)
            if wall is not None:
                df = df.assign(wall_time=wall)
            rows.append({"kind": kind, "data_seed": data_seed, **judge_auto(df, retry_cost)})
    return pd.DataFrame(rows)


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    seeds = [1] if quick else [1, 2, 3, 4, 5]
    names = predictors.available()
    anchors_path = SHARED / "anchors" / "cctools-replay.csv"
    anchors = pd.read_csv(anchors_path) if anchors_path.exists() else pd.DataFrame(
        columns=["trace", "grouping", "algorithm", "AE_time", "AE_count", "retries", "tasks_retried"])
    pd.set_option("display.width", 250)
    print(f"predictors: {', '.join(names)}; seeds {seeds}; retry_cost {RETRY_COST:g} s in the *_rc columns")
    anchor_rows, verdicts, speed_rows = [], [], []

    for trace in TRACES:
        try:
            df = load(trace)
        except Exception as exc:  # a missing file or importer must not stop the other traces
            print(f"\n{trace}: skipped ({type(exc).__name__}: {exc})")
            continue
        for grouping, group_by in (("per-category", "category"), ("one", None)):
            started = time.perf_counter()
            table = _replay_all(df, names, group_by, seeds)
            ref = anchors[(anchors.trace == trace) & (anchors.grouping == grouping)].set_index("algorithm")
            table["reference"] = table["predictor"].map(REFERENCE).fillna("")
            for col in ("AE_time", "AE_count", "retries"):
                table["ref_" + col] = table["reference"].map(ref[col]) if len(ref) else np.nan
            print(f"\n{trace}, {grouping}: {len(df)} tasks, {df['category'].nunique()} categories "
                  f"({time.perf_counter() - started:.1f} s)")
            print(_fmt(table).to_string(index=False))
            if trace == "lobsterCMSsimulation.csv" and group_by:
                print(f"replay loop alone (constant predictor, base-class validation included): "
                      f"{overhead(df):.1f} us/task")
            if "[:" not in trace and len(df) >= SPEED_MIN_TASKS:
                speed_rows += [{"trace": trace, "grouping": grouping, "predictor": r["predictor"],
                                "tasks_per_s": r["tasks_per_s"], "cpu_tasks_per_s": r["cpu_tasks_per_s"]}
                               for r in table.to_dict("records")]
            anchor_rows.append(anchor_verdict(trace, grouping, table, ref))
            verdicts.append(auto_verdict(trace, grouping, table, ref))

    syn_tables = []
    for kind, n, seed in SUITE:
        df = predictors.synthetic(kind, n if not quick else min(n, 1000), seed=seed)
        table = _replay_all(df, names, "category", seeds)
        syn_tables.append(table.assign(kind=kind))
        verdicts.append(auto_verdict(f"synthetic:{kind}:{len(df)}:{seed}", "per-category", table, pd.DataFrame()))
    syn = pd.concat(syn_tables, ignore_index=True)
    sizes = sorted({len(predictors.synthetic(k, n if not quick else min(n, 1000), seed=s)) for k, n, s in SUITE})
    print(f"\nsynthetic suite (predictors.synthetic.SUITE: {len(SUITE)} kinds, {sizes} tasks, seeds "
          f"{sorted({s for _, _, s in SUITE})}; per category): AE_time")
    pivot = syn.pivot(index="predictor", columns="kind", values="AE_time")[[k for k, _, _ in SUITE]]
    print(pivot.round(4).to_string())
    print(f"\nsynthetic suite: AE_time_rc (retry_cost {RETRY_COST:g} s)")
    print(syn.pivot(index="predictor", columns="kind", values="AE_time_rc")[[k for k, _, _ in SUITE]]
          .round(4).to_string())
    print("\nsynthetic suite: retries")
    print(syn.pivot(index="predictor", columns="kind", values="retries")[[k for k, _, _ in SUITE]]
          .astype(int).to_string())

    if anchor_rows:
        print("\nanchor verdicts: lfm's bucketing vs cctools' own (AE_time; the reference rounded to 4 decimals)")
        print(pd.DataFrame(anchor_rows).to_string(index=False))
    print("\nauto's verdicts: AE_time against the best reference algorithm on each trace")
    vt = pd.DataFrame(verdicts)
    print(vt.to_string(index=False))
    main_col = "auto vs best ref"
    misses = int(vt[main_col].str.startswith("MISS").sum())
    registered = not vt[main_col].str.startswith("auto not registered").any()
    print(f"auto >= best reference on {len(vt) - misses} of {len(vt)} rows" if registered
          else "auto is not registered: no verdict")
    if not quick and "--no-data-seeds" not in argv:
        for rc, wall in ((0.0, None), (RETRY_COST, None), (RETRY_COST, SHORT_WALL)):
            started = time.perf_counter()
            ds = data_seed_verdicts(DATA_SEED_TASKS, DATA_SEEDS, rc, wall)
            what = f"retry_cost {rc:g} s" + ("" if wall is None else f", every task {wall:g} s")
            print(f"\nauto on data seeds {DATA_SEEDS} of every suite member ({DATA_SEED_TASKS:,} tasks, per "
                  f"category, {what}; {time.perf_counter() - started:.0f} s)")
            print(ds.to_string(index=False))
            miss = ds[ds["verdict"] == "MISS"]
            print(f"data seeds, {what}: auto >= best reference on {len(ds) - len(miss)} of {len(ds)}; "
                  f"mean margin {ds['diff'].mean():+.4f}; worst {ds['diff'].min():+.4f}")
    _speed(pd.DataFrame(speed_rows))
    many = syn[(syn["kind"] == "many-categories") & ~syn["predictor"].isin(FEATURE_AWARE)]
    if len(many):
        worst = many.loc[many["cpu_tasks_per_s"].idxmin()]
        slow = ", ".join(f"{r.predictor} {r.cpu_tasks_per_s:,.0f}" for r in many.itertuples()
                         if r.cpu_tasks_per_s < SPEED_TARGET) or "none"
        print(f"(not a target, for many-category workloads: on the synthetic many-categories member the slowest "
              f"feature-less predictor is {worst['predictor']} at {worst['cpu_tasks_per_s']:,.0f} tasks per CPU s; "
              f"below {SPEED_TARGET:,.0f}: {slow})")
    sys.stdout.flush()


def _speed(rows: pd.DataFrame) -> None:
    """Speed verdicts on two figures: tasks per CPU second of the replay loop (this
    process's CPU time, the least disturbed seed run: what the code costs) and plain
    wall-clock tasks/s (median over seeds: what a user waits, which on a shared machine
    also measures what else runs)."""
    if not len(rows):
        return
    print(f"\nspeed on public traces of >= {SPEED_MIN_TASKS:,} tasks: tasks per CPU second of the replay loop "
          f"(best seed run) / wall-clock tasks per second (median over seeds); load average now "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    pivot = rows.pivot_table(index="predictor", columns=["trace", "grouping"],
                             values=["cpu_tasks_per_s", "tasks_per_s"])
    both = pd.DataFrame({col: [f"{pivot.loc[p, ('cpu_tasks_per_s',) + col]:,.0f} / "
                               f"{pivot.loc[p, ('tasks_per_s',) + col]:,.0f}" for p in pivot.index]
                         for col in pivot["cpu_tasks_per_s"].columns}, index=pivot.index)
    print(both.to_string())
    featureless = rows[~rows["predictor"].isin(FEATURE_AWARE)]
    for column, label in (("cpu_tasks_per_s", "CPU"), ("tasks_per_s", "wall-clock")):
        worst = featureless.loc[featureless[column].idxmin()]
        ok = worst[column] >= SPEED_TARGET
        print(f"{label}: slowest feature-less predictor: {worst['predictor']} at {worst[column]:,.0f} tasks/s on "
              f"{worst['trace']} ({worst['grouping']}); target >= {SPEED_TARGET:,.0f}: {'ok' if ok else 'MISS'}")
        for r in featureless[featureless[column] < SPEED_TARGET].itertuples():
            print(f"  below target ({label}): {r.predictor} on {r.trace} ({r.grouping}): {getattr(r, column):,.0f}")
        auto = rows[(rows["predictor"] == "auto") & (rows["trace"] == "lobsterCMSsimulation.csv")]
        for r in auto.itertuples():
            v = getattr(r, column)
            print(f"{label}: auto on {r.trace} ({r.grouping}): {v:,.0f} tasks/s; target >= "
                  f"{AUTO_SPEED_TARGET:,.0f}: {'ok' if v >= AUTO_SPEED_TARGET else 'MISS'}")


def _fmt(table: pd.DataFrame) -> pd.DataFrame:
    t = table.copy()
    for col in ("AE_time", "AE_time_rc", "AE_count", "ref_AE_time", "ref_AE_count"):
        t[col] = t[col].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    for col in ("retries", "retries_rc", "tasks_retried", "ref_retries"):
        t[col] = t[col].map(lambda v: "" if pd.isna(v) else f"{v:g}")
    t["tasks_per_s"] = t["tasks_per_s"].map(lambda v: f"{v:,.0f}")
    return t[["predictor", "seeds", "AE_time", "AE_time_rc", "AE_count", "retries", "retries_rc", "tasks_retried",
              "tasks_per_s", "reference", "ref_AE_time", "ref_AE_count", "ref_retries"]]


if __name__ == "__main__":
    main(sys.argv[1:])
