"""``lfm replay TRACE... -p NAME ...``: replay traces through predictors and compare them.

Each TRACE is a path read by :func:`lfm.trace.read_trace` or
``synthetic:KIND:N[:SEED]`` (see :func:`predictors.synthetic`). For every trace,
grouping and predictor the table shows the absolute efficiency (time- and
count-weighted), waste (allocated minus used, times wall time: MB·s for memory),
retries and replay speed; with several seeds each number
is the median over seeds 1..N. ``--retry-cost S`` charges each failed attempt S
more seconds (``AE_time`` with it, ``AE_time_plain`` without).
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import pandas as pd

from lfm.checks import writable_later

COLUMNS = ["trace", "grouping", "predictor", "seeds", "AE_time", "AE_count", "waste",
           "retries", "tasks_retried", "tasks", "tasks_per_s"]
#: name of the waste column (allocated minus used, times seconds) per labelled resource
WASTE_COLUMN = {"memory": "waste_MBs", "disk": "waste_MBs", "cores": "waste_core_s", "wall_time": "waste_s2"}
FORMATS = ("table", "csv", "json", "markdown")
#: Progress bar when a trace × predictors × seeds replay exceeds this many tasks.
PROGRESS_THRESHOLD = 200_000


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("traces", nargs="+", metavar="TRACE",
                        help="trace file (any format lfm.trace reads) or synthetic:KIND:N[:SEED]")
    parser.add_argument("-p", "--predictor", action="append", dest="predictors", metavar="NAME",
                        help="predictor to replay (repeatable; default: every available one)")
    parser.add_argument("--by", choices=("category", "none", "both"), default="category",
                        help="one model per category, one for all tasks, or both (default: category)")
    parser.add_argument("--resource", action="append", dest="resources", metavar="NAME",
                        help="resource to label (repeatable; default: memory); metrics are of the first")
    parser.add_argument("--seeds", type=int, default=1, metavar="N",
                        help="replay named predictors with seeds 1..N and report medians (default: 1)")
    parser.add_argument("--max", action="append", default=[], metavar="RESOURCE=VALUE",
                        help="machine size (MB, cores, s); default: the largest usage rounded up "
                             "to a power-of-two GB (memory, disk), cores or hours")
    parser.add_argument("--pool", metavar="N[:SIZE]",
                        help="also simulate N workers of SIZE (default: the machine size) and report "
                             "makespan (s) and throughput (tasks/h)")
    parser.add_argument("--retry-cost", type=float, default=0.0, metavar="S",
                        help="charge every failed attempt S more seconds at its allocation (dispatch and "
                             "queueing; default 0); predictors with a retry_cost parameter (auto, adaptive) "
                             "are given it. AE_time then includes it, AE_time_plain does not")
    parser.add_argument("--csv", metavar="OUT", help="also write every predictor × seed row to this CSV file")
    parser.add_argument("--plot", metavar="OUT.png",
                        help="draw usage, allocations and bucket bounds per predictor (one file per "
                             "trace and grouping: OUT-<trace>-<grouping>.png when there are several)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar on stderr (default: on long runs when stderr is a terminal)")


def _error(message: str) -> int:
    print(f"lfm replay: {message}", file=sys.stderr)
    return 2


def _load(spec: str) -> pd.DataFrame:
    """A trace from a path or ``synthetic:KIND:N[:SEED]``; ValueError/OSError with the reason."""
    import predictors
    if spec.startswith("synthetic:"):
        parts = spec.split(":")
        if len(parts) not in (3, 4):
            raise ValueError(f"{spec!r}: expected synthetic:KIND:N[:SEED], e.g. synthetic:bimodal:1000")
        try:
            n = int(parts[2])
            seed = int(parts[3]) if len(parts) == 4 else 0
        except ValueError:
            raise ValueError(f"{spec!r}: N and SEED must be integers (synthetic:KIND:N[:SEED])") from None
        return predictors.synthetic(parts[1], n, seed)
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"{spec}: no such file")
    from lfm.trace import read_trace
    return read_trace(path)


def _parse_max(items: list[str]) -> dict[str, float] | None:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"--max {item!r}: expected RESOURCE=VALUE, e.g. --max memory=4096")
    return out or None


def _parse_pool(text: str | None) -> int | tuple[int, float] | None:
    if text is None:
        return None
    count, _, size = text.partition(":")
    try:
        n = int(count)
        pool = (n, float(size)) if size else n
    except ValueError:
        raise ValueError(f"--pool {text!r}: expected N or N:SIZE, e.g. --pool 8 or --pool 8:4096") from None
    if n < 1:
        raise ValueError(f"--pool {text!r}: needs at least one worker")
    return pool


def _takes_retry_cost(name: str) -> bool:
    import predictors
    try:
        predictors.create(name, retry_cost=1.0)
    except TypeError:
        return False
    return True


def _replay(df: pd.DataFrame, names: list[str], retry_cost: float, **options):
    """``predictors.replay`` of every name; with a retry cost, the predictors that take a
    ``retry_cost`` parameter get it (one replay per name, merged)."""
    import predictors
    if not retry_cost:
        return predictors.replay(df, names, **options)
    parts = [predictors.replay(df, [n], retry_cost=retry_cost,
                               params={"retry_cost": retry_cost} if _takes_retry_cost(n) else None, **options)
             for n in names]
    merged = {key: pd.concat([getattr(p, key) for p in parts], ignore_index=True)
              for key in ("attempts", "summary", "by_category", "states")}
    return predictors.ReplayResult(**merged, resources=parts[0].resources, machine=parts[0].machine)


def _label(spec: str) -> str:
    return spec if spec.startswith("synthetic:") else Path(spec).name


def main(args: argparse.Namespace) -> int:
    import predictors
    from predictors.plot import plot_replay

    names = args.predictors or predictors.available()
    try:
        for name in names:
            predictors.check_name(name)
    except ValueError as exc:
        return _error(str(exc))
    resources = tuple(args.resources or ("memory",))
    if args.seeds < 1:
        return _error(f"--seeds must be at least 1, got {args.seeds}")
    if not args.retry_cost >= 0 or args.retry_cost == float("inf"):
        return _error(f"--retry-cost must be a number of seconds >= 0, got {args.retry_cost}")
    try:
        machine = _parse_max(args.max)
        pool = _parse_pool(args.pool)
    except ValueError as exc:
        return _error(str(exc))
    groupings = {"category": ["category"], "none": [None], "both": ["category", None]}[args.by]
    try:   # before the replays, which may take minutes, not when writing after them
        for flag, out in (("--csv", args.csv), ("--plot", args.plot)):
            if out:
                writable_later(out, flag)
    except ValueError as exc:
        return _error(str(exc))

    rows = []
    warned: set[str] = set()
    for spec in args.traces:
        try:
            df = _load(spec)
        except (OSError, ValueError) as exc:
            return _error(f"cannot read trace {spec}: {exc}")
        if df.empty:
            return _error(f"{spec}: the trace holds no tasks: nothing to replay")
        for group_by in groupings:
            grouping = "per-category" if group_by else "one"
            work = len(df) * len(names) * args.seeds
            progress = args.progress if args.progress is not None else (
                sys.stderr.isatty() and work > PROGRESS_THRESHOLD)
            try:
                with warnings.catch_warnings(record=True) as said:
                    warnings.simplefilter("default")
                    result = _replay(df, names, args.retry_cost, group_by=group_by, resources=resources,
                                     seeds=range(1, args.seeds + 1), max_resources=machine,
                                     progress=progress, pool=pool,
                                     record_state=max(1, len(df) // 300) if args.plot else 0)
            except ValueError as exc:
                return _error(f"{spec}: {str(exc).replace('group_by=None', '--by none')}")
            for warning in said:   # once per trace, saying which
                message = f"{spec}: {warning.message}"
                if message not in warned:
                    warned.add(message)
                    warnings.warn_explicit(message, warning.category, warning.filename, warning.lineno)
            summary = result.summary.assign(trace=_label(spec), grouping=grouping)
            rows.append(summary)
            if args.plot:
                out = Path(args.plot)
                if len(args.traces) * len(groupings) > 1:
                    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in _label(spec))
                    out = out.with_name(f"{out.stem}-{stem}-{grouping}{out.suffix or '.png'}")
                try:
                    plot_replay(result, out, title=f"{_label(spec)} ({grouping}, {resources[0]})")
                except OSError as exc:
                    return _error(f"--plot: cannot write {out}: {exc}")
                print(f"lfm replay: wrote {out}", file=sys.stderr)

    allrows = pd.concat(rows, ignore_index=True)
    if args.csv:
        try:
            allrows.to_csv(args.csv, index=False)
        except OSError as exc:
            return _error(f"--csv: cannot write {args.csv}: {exc}")
    table = _table(allrows).rename(columns={"waste": WASTE_COLUMN[resources[0]]})
    if args.format == "csv":
        table.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        print(json.dumps(table.to_dict(orient="records"), indent=1))
    elif args.format == "markdown":
        print(_markdown(table))
    else:
        print(_text(table))
    return 0


def _table(rows: pd.DataFrame) -> pd.DataFrame:
    """Median over seeds per trace × grouping × predictor, in COLUMNS order."""
    keys = ["trace", "grouping", "predictor"]
    grouped = rows.groupby(keys, sort=False)
    out = grouped[["AE_time", "AE_count", "waste", "retries", "tasks_retried", "tasks", "tasks_per_s"]].median()
    out["seeds"] = grouped["seed"].nunique()
    extra = [c for c in ("AE_time_plain", "makespan", "throughput") if c in rows.columns]
    for col in extra:
        out[col] = grouped[col].median()
    out = out.reset_index()
    return out[COLUMNS + extra]


def _formatted(table: pd.DataFrame) -> pd.DataFrame:
    t = table.copy()
    for col in ("AE_time", "AE_count", "AE_time_plain"):
        if col in t.columns:
            t[col] = t[col].map(lambda v: f"{v:.4f}")
    waste = next(c for c in t.columns if c.startswith("waste"))
    t[waste] = t[waste].map(lambda v: f"{v:.4g}")
    for col in ("retries", "tasks_retried", "tasks"):
        t[col] = t[col].map(lambda v: f"{v:g}")
    t["tasks_per_s"] = t["tasks_per_s"].map(lambda v: f"{v:,.0f}")
    for col in ("makespan", "throughput"):
        if col in t.columns:
            t[col] = t[col].map(lambda v: f"{v:,.0f}")
    return t


def _text(table: pd.DataFrame) -> str:
    return _formatted(table).to_string(index=False)


def _markdown(table: pd.DataFrame) -> str:
    t = _formatted(table)
    lines = ["| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in t.itertuples(index=False)]
    return "\n".join(lines)
