"""``lfm demo``: monitor a handful of real, different calls and print what each used.

The calls: numpy matrix products of three sizes, a call that runs a child
process, a sleep, a call that hits its memory limit (and is killed), and the
same numpy work measured inline. Takes a few seconds.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

from lfm.monitor import run_call
from lfm.resources import MonitorError, Resources


def matmul(n: int) -> float:
    """Multiply two random n x n matrices; returns the trace."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.random((n, n)), rng.random((n, n))
    return float(np.trace(a @ b))


def with_child(mb: int) -> int:
    """Run a child Python process that holds ``mb`` MB for 0.3 s."""
    code = f"import time; x = bytearray(b'1') * ({mb} * 2**20); time.sleep(0.3)"
    return subprocess.run([sys.executable, "-c", code], check=True).returncode


def grow(step_mb: int) -> None:
    """Allocate ``step_mb`` more MB every 20 ms, forever (until killed)."""
    chunks = []
    while True:
        chunks.append(bytearray(b"1") * (step_mb * 2**20))
        time.sleep(0.02)


CALLS = [  # label, function, args, options
    ("matmul n=300", matmul, (300,), {}),
    ("matmul n=1500", matmul, (1500,), {}),
    ("matmul n=3000", matmul, (3000,), {}),
    ("child process 250 MB", with_child, (250,), {}),
    ("sleep 0.5 s", time.sleep, (0.5,), {}),
    ("grow, limit 200 MB", grow, (25,), {"limits": {"memory": 200}}),
    ("matmul n=1500 inline", matmul, (1500,), {"isolate": False}),
]

COLUMNS = [("memory", "memory MB", "{:.0f}"), ("cores", "cores", "{:.2f}"),
           ("wall_time", "wall s", "{:.2f}"), ("cpu_time", "cpu s", "{:.2f}"),
           ("total_processes", "procs", "{:.0f}")]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="skip the largest call")


def main(args: argparse.Namespace) -> int:
    print("lfm demo: monitoring a few different calls ...", flush=True)
    rows = []
    for label, fn, call_args, options in CALLS:
        if args.quick and label == "matmul n=3000":
            continue
        try:
            _, res = run_call(fn, call_args, **options)
            status = "ok"
        except MonitorError as exc:
            res = getattr(exc, "resources", None) or Resources()
            exceeded = getattr(exc, "exceeded", None)
            status = f"killed: {', '.join(exceeded)} limit" if exceeded else type(exc).__name__
        rows.append([label, status, *(fmt.format(res[key]) if key in res else "-"
                                      for key, _, fmt in COLUMNS)])
    header = ["call", "status", *(title for _, title, _ in COLUMNS)]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths))))
    print("\nmemory: peak resident MB of the call's process tree (isolated calls include "
          "their ~15-40 MB interpreter; the inline one, the whole lfm process); "
          "cores = cpu s / wall s.")
    return 0
