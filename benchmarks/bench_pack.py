"""``pack``: what shipping a measured environment costs, beside Poncho's figures.

The app: a function in a local module that imports numpy, pandas and a helper
module beside it (both written to a temporary directory, as a user's script
and helper would be). Its environment is analysed, built into a package in
a fresh cache (``lfm.pack``), and run on a real Work Queue worker whose Python
is a bare ``venv --without-pip`` (neither lfm nor numpy/pandas).

Table 1 (package): build time (s) and size (MB) of the package, without and
with ``include_python``, beside Poncho's published creation time (170-2,940 s)
and packed size (438 MB-1.4 GB, conda-pack environments).

Table 2 (tasks): first-task delay (submit -> result of the first call on a
fresh worker: package build, transfer, unpacking, run), the unpacking on the
worker (s), per-task latency once cached (median of sequential calls), and the
same call's latency on a worker that already has the environment (a local
worker with lfm's own interpreter, no pack): the difference is the per-task
overhead of running inside the package; the same for a trivial call (no
imports), which isolates the wrapper's own cost. Poncho's unpacking: 12-46 s.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HELPER = '''import numpy as np


def scale(values, factor):
    return np.asarray(values, dtype=float) * factor
'''
APP = '''import pandas as pd

import bench_pack_helper


def summarise(n):
    frame = pd.DataFrame({"x": bench_pack_helper.scale(range(n), 2.0)})
    return float(frame["x"].sum())


def nothing(n):
    return n
'''
SIZE = {"cores": 1, "memory": 1500, "disk": 6000}
CALLS = 8


def _app(directory: str):
    with open(os.path.join(directory, "bench_pack_helper.py"), "w") as f:
        f.write(HELPER)
    with open(os.path.join(directory, "bench_pack_app.py"), "w") as f:
        f.write(APP)
    sys.path.insert(0, directory)
    import bench_pack_app
    return bench_pack_app.summarise, bench_pack_app.nothing


def bench_build(fn, directory: str) -> None:
    from lfm.pack import PackageCache, scan_function, spec_from_imports
    print(f"{'package':34} {'build s':>8} {'size MB':>8} {'files':>6}   Poncho (conda-pack)")
    for include_python in (False, True):
        spec = spec_from_imports(scan_function(fn), source="static scan", include_python=include_python)
        cache = PackageCache(os.path.join(directory, f"cache-{include_python}"))
        package = cache.get(spec)
        label = "numpy+pandas+helper" + (" +python" if include_python else "")
        poncho = "170-2,940 s, 438 MB-1.4 GB" if not include_python else ""
        print(f"{label:34} {package.build_time:8.2f} {package.size_mb:8.1f} {package.files:6d}   {poncho}")
    started = time.perf_counter()
    spec = spec_from_imports(scan_function(fn), source="static scan")
    analysed = time.perf_counter() - started
    started = time.perf_counter()
    PackageCache(os.path.join(directory, "cache-False")).get(spec)
    print(f"{'static scan + spec (no build)':34} {analysed:8.3f}")
    print(f"{'same spec again (cache hit)':34} {time.perf_counter() - started:8.3f}")
    print(f"contents: {spec.summary()}")


def _bare_python(directory: str) -> str:
    where = os.path.join(directory, "bare")
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", "--without-pip", where], check=True, timeout=120)
    return os.path.join(where, "bin", "python3")


def _latencies(ex, fn, calls: int) -> list[float]:
    out = []
    for i in range(calls):
        started = time.perf_counter()
        ex.submit(fn, 1000 + i).result(timeout=300)
        out.append(time.perf_counter() - started)
    return out


def bench_tasks(fn, trivial, directory: str) -> None:
    from lfm.executors import AutolabelExecutor, work_queue_available
    ok, why = work_queue_available()
    if not ok:
        print(f"(tasks: skipped, Work Queue is not installed: {why})")
        return
    python = _bare_python(directory)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": directory}
    with AutolabelExecutor(backend="workqueue", max_resources=SIZE, python=python, verbose=False,
                           pack=True, pack_cache=os.path.join(directory, "wq-cache")) as ex:
        workdir = os.path.join(directory, "worker")
        os.makedirs(workdir)
        argv = ex.backend.worker_argv(SIZE, workdir=workdir, options=["--timeout=600"])
        argv[0] = shutil.which(argv[0])
        worker = subprocess.Popen(argv, cwd=workdir, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True)
        try:
            time.sleep(1.0)  # let the worker connect: the delay measured is the package's
            started = time.perf_counter()
            ex.submit(fn, 10).result(timeout=600)
            first = time.perf_counter() - started
            cached = _latencies(ex, fn, CALLS)
            ex.submit(trivial, 0).result(timeout=300)
            cached_trivial = _latencies(ex, trivial, CALLS)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        stats = dict(ex.backend.pack.stats)
    with AutolabelExecutor(backend="workqueue", workers=[SIZE], verbose=False) as ex:
        ex.submit(fn, 10).result(timeout=300)  # warm: the worker and the bytecode
        plain = _latencies(ex, fn, CALLS)
        plain_trivial = _latencies(ex, trivial, CALLS)
    print(f"{'Work Queue, one worker':34} {'s':>8}   Poncho")
    print(f"{'first-task delay (build+send+unpack+run)':34} {first:8.2f}")
    print(f"{'  of which package build':34} {stats['build_time']:8.2f}   creation 170-2,940 s")
    print(f"{'  of which unpacking on the worker':34} {stats['unpack_time']:8.2f}   unpacking 12-46 s")
    print(f"{'per task once cached (median)':34} {statistics.median(cached):8.3f}")
    print(f"{'same call, worker has the env':34} {statistics.median(plain):8.3f}")
    print(f"{'per-task overhead of the package':34} "
          f"{statistics.median(cached) - statistics.median(plain):8.3f}")
    print(f"{'trivial call once cached (median)':34} {statistics.median(cached_trivial):8.3f}")
    print(f"{'trivial call, worker has the env':34} {statistics.median(plain_trivial):8.3f}")
    print(f"(packages built {stats['packages_built']:.0f}, unpacked {stats['unpacked']:.0f}, "
          f"reused {stats['reused']:.0f}; {2 * CALLS + 2} calls, attempts include label retries)")


def main(argv: list[str]) -> None:
    directory = tempfile.mkdtemp(prefix="lfm-bench-pack-")
    try:
        fn, trivial = _app(directory)
        bench_build(fn, directory)
        print()
        bench_tasks(fn, trivial, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
