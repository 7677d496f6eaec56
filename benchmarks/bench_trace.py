"""Trace reading and recording speed.

Tables: ``read_trace`` of each public trace (rows, best of 3 in s, rows/s) with
the ratio to a bare ``pandas.read_csv`` / ``json.load`` of the same file (the
cost of validation and schema shaping), against the target "lobsterCMSsimulation
(30,630 rows) well under 1 s"; and ``Trace.append`` rows/s (open, lock, one
write per row) against a bare buffered ``write`` per row in one open file, and
with 4 processes appending to one file at once.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from lfm.trace import Trace, make_row, read_trace

SHARED = Path(os.environ.get("LFM_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
TRACES = ["bioblast.csv", "lobsterCMSsimulation.csv", "blast-medium-001.json", "bwa-small-001.json"]
READ_TARGET_S = 1.0


def _best(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _bare(path: Path) -> None:
    if path.suffix == ".json":
        with open(path) as stream:
            json.load(stream)
    else:
        pd.read_csv(path)


def bench_read() -> None:
    print(f"{'trace':28} {'rows':>7} {'read_trace s':>12} {'rows/s':>10} {'bare s':>8} {'ratio':>6} {'target':>8}")
    for name in TRACES:
        path = SHARED / "traces" / name
        if not path.exists():
            print(f"{name:28} (missing: {path})")
            continue
        rows = len(read_trace(path))
        ours, bare = _best(lambda: read_trace(path)), _best(lambda: _bare(path))
        verdict = ("ok" if ours < READ_TARGET_S else "MISSED") if name.startswith("lobster") else ""
        print(f"{name:28} {rows:7d} {ours:12.4f} {rows / ours:10.0f} {bare:8.4f} {ours / bare:6.1f} {verdict:>8}")


def _append(path: str, count: int) -> None:
    trace = Trace(path)
    for i in range(count):
        trace.append(make_row("bench", {"memory": float(i), "wall_time": 1.0}, "ok", task_id=i))


def bench_append(count: int) -> None:
    row = make_row("bench", {"memory": 1.0, "wall_time": 1.0}, "ok", task_id=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "t.jsonl")
        start = time.perf_counter()
        _append(path, count)
        ours = time.perf_counter() - start
        bare_path = os.path.join(tmp, "bare.jsonl")
        start = time.perf_counter()
        with open(bare_path, "w") as stream:
            for i in range(count):
                stream.write(json.dumps(dict(row, task_id=i)) + "\n")
        bare = time.perf_counter() - start
        shared = os.path.join(tmp, "shared.jsonl")
        procs = [multiprocessing.get_context("fork").Process(target=_append, args=(shared, count // 4))
                 for _ in range(4)]
        start = time.perf_counter()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        parallel = time.perf_counter() - start
        intact = len(read_trace(shared)) == 4 * (count // 4)
    print(f"{'writer':36} {'rows':>6} {'s':>8} {'rows/s':>10} {'vs bare':>8}")
    print(f"{'Trace.append, 1 process':36} {count:6d} {ours:8.3f} {count / ours:10.0f} {ours / bare:8.1f}")
    print(f"{'bare buffered write, 1 process':36} {count:6d} {bare:8.3f} {count / bare:10.0f} {1.0:8.1f}")
    print(f"{'Trace.append, 4 processes, 1 file':36} {4 * (count // 4):6d} {parallel:8.3f} "
          f"{4 * (count // 4) / parallel:10.0f} {'':>8}  all lines intact: {intact}")


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    bench_read()
    print()
    bench_append(2000 if quick else 10000)


if __name__ == "__main__":
    main(sys.argv[1:])
