"""``lfm demo`` / ``python -m lfm.demo``: the whole idea in about two minutes.

Runs the demo workflow (:mod:`lfm.demo.workload`) on the local backend (or a
local Work Queue worker) three ways: with lfm's autolabel (``auto`` by
default), with the fixed guess most users declare (2,000 MB and 1 core per
call), and with one call per worker (no label: each call takes a whole worker,
as Parsl's Work Queue executor does without resource specifications). With
``--backend workqueue`` also with Work Queue's own autolabel, configured as
Parsl configures it. Prints the comparison and writes plots, the comparison
and the per-attempt traces to ``--out`` (``demo-output/``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from lfm.executors.arguments import BACKENDS

DESCRIPTION = ("Run a workflow of real Python calls with lfm's autolabel, with a fixed guess of "
               "2,000 MB and 1 core per call and with one call per worker (and, on Work Queue, with "
               "Work Queue's own autolabel), compare them and plot them.")
DEFAULT_TASKS = 80
#: Work Queue worker started for ``--backend workqueue``: this machine's cores,
#: at most this much memory (MB) and disk (MB).
WQ_WORKER_MEMORY = 8192
WQ_WORKER_DISK = 4096


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options to ``parser`` (the ``lfm demo`` sub-command's)."""
    parser.add_argument("--backend", choices=BACKENDS, default="local",
                        help="run the calls on this machine (local, the default) or on "
                             "local Work Queue workers (workqueue; needs cctools)")
    parser.add_argument("--tasks", type=int, default=DEFAULT_TASKS, metavar="N",
                        help=f"number of calls in the workflow (default {DEFAULT_TASKS})")
    parser.add_argument("--out", default="demo-output", metavar="DIR",
                        help="directory for the plots and tables (default demo-output)")
    parser.add_argument("--predictor", default="auto", metavar="NAME",
                        help="autolabel predictor (default auto; see predictors.available())")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="seed of the workflow and of the predictor (default 0)")


def run(args: argparse.Namespace) -> int:
    """Run the demo with parsed ``args``; returns the exit status (0 ok, 1 when
    some call failed for good, 2 for bad options)."""
    import predictors

    from lfm.demo import plots
    from lfm.demo.rawrun import run_wq_autolabel, usage_of
    from lfm.demo.runs import (FIXED_GUESS, ONE_PER_WORKER, autolabel, compare, format_comparison,
                               run_policy, spotlight)
    from lfm.demo.workload import simulation_memory, workflow

    if args.tasks < 1:
        print(f"lfm demo: --tasks must be at least 1, got {args.tasks}", file=sys.stderr)
        return 2
    try:
        predictors.check_name(args.predictor)
    except ValueError as exc:
        print(f"lfm demo: {exc}", file=sys.stderr)
        return 2
    if args.predictor == "oracle":
        print("lfm demo: the oracle is for replay only (it needs each task's usage in advance); "
              "choose another predictor", file=sys.stderr)
        return 2
    options, where = _backend(args.backend)
    if options is None:
        print(f"lfm demo: {where}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    calls = workflow(args.tasks, args.seed)
    counts = {c: sum(1 for k, _ in calls if k == c) for c in dict.fromkeys(k for k, _ in calls)}
    print(f"lfm demo: {len(calls)} calls ({', '.join(f'{n} {c}' for c, n in counts.items())}) "
          f"on {where}", flush=True)
    started = time.monotonic()
    policies = [(autolabel(args.predictor), f"autolabel with {args.predictor}"),
                (FIXED_GUESS, "the fixed guess: every call declares 2,000 MB and 1 core"),
                (ONE_PER_WORKER, "one call per worker (no label: each call takes a whole worker)")]
    results = []
    for policy, title in policies:
        print(f"\n== {title} ==", flush=True)
        results.append(run_policy(policy, calls, backend=args.backend, backend_options=options,
                                  seed=args.seed))
    if args.backend == "workqueue":
        print("\n== Work Queue's own autolabel, configured as Parsl's WorkQueueExecutor"
              "(autolabel=True) configures it ==", flush=True)
        results.append(run_wq_autolabel(calls, options["workers"][0], usage=usage_of(results[0])))

    molecules = _spotlight_molecules([a for c, a in calls if c == "simulate"], simulation_memory)
    calls_memory = spotlight(molecules)

    table = compare(results)
    table.to_csv(out / "comparison.csv", index=False)
    for res in results:
        res.attempts.to_csv(out / f"attempts-{res.policy}.csv", index=False)
    files = [out / "comparison.csv", *(out / f"attempts-{r.policy}.csv" for r in results)]
    files.append(plots.plot_labels_over_time(results[0], out / f"labels-over-time-{results[0].policy}.png"))
    files.append(plots.plot_call_memory(calls_memory, out / "memory-of-calls.png"))
    files.append(plots.plot_efficiency(table, out / "efficiency-per-policy.png"))

    print(f"\n== comparison: the same {len(calls)} calls on the {args.backend} backend ==")
    print(format_comparison(table))
    print("memory AE, cores AE: used·time / allocated·time (1 = no waste); "
          "peak memory: sampled, of the demo's processes")
    for k in range(1, len(table)):
        print(_verdict(table.iloc[0], table.iloc[k]))
    failed = [(r.policy, e) for r in results for e in r.errors]
    for policy, error in failed[:5]:
        print(f"failed call ({policy}): {error}")
    print(f"\nfiles in {out.resolve()}:")
    for path in files:
        print(f"  {path.name}")
    print(f"lfm demo: done in {time.monotonic() - started:.0f} s", flush=True)
    return 1 if failed else 0


def _verdict(auto, other) -> str:
    """One sentence comparing the autolabel row with another policy's row."""
    speed = other["makespan_s"] / auto["makespan_s"] if auto["makespan_s"] > 0 else float("nan")
    span = f"{speed:.1f}x shorter" if speed >= 1 else f"{1 / speed:.1f}x longer"
    gain = auto["memory_AE"] / other["memory_AE"] if other["memory_AE"] > 0 else float("nan")
    more = f"{gain:.1f}x higher" if gain >= 1 else f"{1 / gain:.1f}x lower"
    return (f"{auto['policy']} vs {other['policy']}: makespan {span}, memory efficiency {more}, "
            f"{auto['retries']} retries against {other['retries']}.")


def _backend(name: str) -> tuple[dict | None, str]:
    """Backend options and a description of where the calls run, or
    (None, why) when the backend cannot be used here."""
    from lfm.executors import machine_capacity, work_queue_available

    size = machine_capacity()
    if name == "local":
        return {}, (f"the local backend ({size['cores']:g} cores, {size['memory']:.0f} MB)")
    ok, why = work_queue_available()
    if not ok:
        return None, f"--backend workqueue needs Work Queue: {why}"
    worker = {"cores": size["cores"], "memory": min(WQ_WORKER_MEMORY, size["memory"] // 2),
              "disk": min(WQ_WORKER_DISK, size["disk"] // 2)}
    return ({"workers": [worker], "verbose": False},
            f"a local Work Queue worker ({worker['cores']:g} cores, {worker['memory']:.0f} MB, "
            f"{worker['disk']:.0f} MB disk)")


def _spotlight_molecules(molecules: list[int], memory_of) -> list[int]:
    """Up to three molecules of the workflow: the smallest, the median and the
    largest by memory (fewer when the workflow has fewer)."""
    if not molecules:
        return [0]
    ranked = sorted(dict.fromkeys(molecules), key=memory_of)
    picks = [ranked[0], ranked[len(ranked) // 2], ranked[-1]]
    return list(dict.fromkeys(picks))


def main(argv: list[str] | None = None) -> int:
    """``python -m lfm.demo [--backend local|workqueue] [--tasks N] [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m lfm.demo", description=DESCRIPTION)
    configure(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("lfm demo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
