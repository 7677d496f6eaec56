"""A Parsl workflow through lfm's Parsl executor versus Parsl's HighThroughputExecutor.

Same apps, same machine, one run: N ``@python_app`` calls of two categories,
"small" (40 MB for 0.1 s) and "large" (200-500 MB for 0.3 s, varying with the
argument), submitted at once and run by

* ``lfm``: ``lfm.parsl.AutolabelExecutor(backend="local", predictor="greedy")``
  (labels learnt as the workflow runs, exhaustion retries inside lfm),
* ``htex``: Parsl's ``HighThroughputExecutor`` with one worker per core on a
  ``LocalProvider`` (no labels: each worker takes the next app).

Columns: makespan (s, first submission to last result, after one warm-up app
so that worker start-up is not counted; the workflow runs twice per executor,
alternating, and the faster run is reported with its memory peaks; lfm's
predictor keeps what it learnt in the first round); peak memory of the
machine (MB of ``total - available`` above its peak over 0.5 s idle just
before, sampled every 50 ms; other processes on a shared machine add noise)
and of the
executors' own processes (summed RSS of the interchange, workers, fork
server and call processes, same baseline; immune to that noise); for lfm its
retries and memory efficiency (Σ used·time / Σ allocated·time) over both rounds.

Both executors live in one DataFlowKernel. Then the overhead per app on a
trivial app (returns its argument): sequential latency (submit to result, one
at a time, median; lfm and htex alternate so machine noise hits both alike) and
batch time per app (all submitted at once); "lfm overhead" is lfm's minus htex's.

``--quick``: 30 workflow apps and 20 trivial apps instead of 100 and 100.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time

import psutil

MB = 2 ** 20
#: Rounds of the workflow per executor (alternating); the fastest is reported.
ROUNDS = 2
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- the workload (module level: workers import this module by name) ------------------
def large_mb(i: int) -> int:
    """Peak memory (MB) large(i) allocates: 200-500 MB."""
    return 200 + (i * 37) % 301


def small(i: int) -> int:
    """40 MB for 0.1 s."""
    block = bytearray(40 * MB)
    time.sleep(0.1)
    return len(block) // MB + i * 0


def large(i: int) -> int:
    """200-500 MB for 0.3 s."""
    block = bytearray(large_mb(i) * MB)
    time.sleep(0.3)
    return len(block) // MB


def trivial(i: int) -> int:
    return i


# ---- measuring the machine ----------------------------------------------------------------
class MemoryPeak:
    """While active, peaks (MB) of the machine's used memory (total - available)
    and of the summed resident memory of the executors' processes: every
    descendant of ``roots`` (the interchange, fork server and call processes
    descend from this process; HTEX's worker pool is detached, found by
    :func:`detached_roots`). The second is what other users of a shared
    machine cannot disturb."""

    def __init__(self, roots: list[psutil.Process], interval: float = 0.05) -> None:
        self.roots = roots
        self.interval = interval
        self.peak = {"machine": _machine(), "tree": self._tree()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "MemoryPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak["machine"] = max(self.peak["machine"], _machine())
            self.peak["tree"] = max(self.peak["tree"], self._tree())
            time.sleep(self.interval)

    def _tree(self) -> float:
        seen: dict[int, int] = {}
        for root in self.roots:
            try:
                procs = root.children(recursive=True)
                if root.pid != os.getpid():
                    procs.append(root)
            except psutil.Error:
                continue
            for proc in procs:
                try:
                    seen.setdefault(proc.pid, proc.memory_info().rss)
                except psutil.Error:  # ended meanwhile
                    pass
        return sum(seen.values()) / MB

    def above(self, baseline: dict[str, float]) -> dict[str, float]:
        return {k: self.peak[k] - baseline[k] for k in self.peak}


def detached_roots(marker: str) -> list[psutil.Process]:
    """Processes (not descending from this one) whose command line mentions
    ``marker`` (the run directory): HTEX's worker pool."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if proc.pid != os.getpid() and any(marker in arg for arg in proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def _machine() -> float:
    vm = psutil.virtual_memory()
    return (vm.total - vm.available) / MB


# ---- the run -----------------------------------------------------------------------------
def executors() -> list:
    """lfm's Parsl executor and Parsl's HighThroughputExecutor (one worker per core)."""
    from parsl.executors import HighThroughputExecutor
    from parsl.providers import LocalProvider

    from lfm.parsl import AutolabelExecutor

    # HTEX starts interchange.py and process_worker_pool.py from PATH
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "")])
    htex = HighThroughputExecutor(
        label="htex", max_workers_per_node=os.cpu_count() or 1, cores_per_worker=1,
        provider=LocalProvider(init_blocks=1, max_blocks=1,
                               worker_init=f"export PYTHONPATH={REPO}:$PYTHONPATH"))
    return [AutolabelExecutor(label="lfm", backend="local", predictor="greedy"), htex]


def workflow(apps: dict, n_apps: int, roots: list[psutil.Process]) -> dict:
    """Run the two-category workflow on one executor: makespan and memory peaks."""
    idle = MemoryPeak(roots)
    with idle:
        time.sleep(0.5)
    with MemoryPeak(roots) as peak:
        t0 = time.perf_counter()
        futures = [apps["large"](i) if i % 5 in (1, 3) else apps["small"](i) for i in range(n_apps)]
        results = [f.result() for f in futures]
        makespan = time.perf_counter() - t0
    assert results[0] == 40 and results[1] == large_mb(1), results[:2]
    # above the idle peak: what the executors hold while idle is not charged
    above = peak.above(idle.peak)
    return {"makespan": makespan, "peak": above["machine"], "tree_peak": above["tree"]}


def run(n_apps: int, n_trivial: int, run_dir: str) -> dict:
    """Both executors in one DataFlowKernel: the workflows one after the other,
    trivial-app latencies interleaved so that machine noise hits both alike."""
    import parsl
    from parsl import Config, python_app

    lfm, htex = executors()
    apps = {ex.label: {name: python_app(fn, executors=[ex.label])
                       for name, fn in (("small", small), ("large", large), ("trivial", trivial))}
            for ex in (lfm, htex)}
    parsl.load(Config(executors=[lfm, htex], run_dir=run_dir))
    try:
        for kind in apps:  # warm-up: workers (or the fork server) are up
            apps[kind]["trivial"](0).result()
        roots = [psutil.Process(), *detached_roots(run_dir)]
        runs: dict[str, list[dict]] = {kind: [] for kind in apps}
        for _ in range(ROUNDS):  # alternate, so that a noisy spell does not hit one executor only
            for kind in apps:
                runs[kind].append(workflow(apps[kind], n_apps, roots))
        results = {kind: min(runs[kind], key=lambda r: r["makespan"]) for kind in apps}

        latencies: dict[str, list[float]] = {kind: [] for kind in apps}
        for i in range(n_trivial):
            for kind in apps:
                t = time.perf_counter()
                apps[kind]["trivial"](i).result()
                latencies[kind].append(time.perf_counter() - t)
        for kind in apps:
            results[kind]["latency"] = statistics.median(latencies[kind])
            t = time.perf_counter()
            [f.result() for f in [apps[kind]["trivial"](i) for i in range(n_trivial)]]
            results[kind]["batch"] = (time.perf_counter() - t) / n_trivial

        stats = lfm.stats().loc[["small", "large"]]
        results["lfm"]["retries"] = int(stats["retries"].sum())
        alloc = stats["alloc_memory_s"].sum()
        results["lfm"]["ae_memory"] = stats["used_memory_s"].sum() / alloc if alloc else float("nan")
        return results
    finally:
        parsl.dfk().cleanup()
        parsl.clear()


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    n_apps, n_trivial = (30, 20) if quick else (100, 100)
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="lfm-bench-parsl-") as tmp:
        results = run(n_apps, n_trivial, tmp)
    load_after = os.getloadavg()[0]

    print(f"\nParsl workflow: {n_apps} apps of two categories (small 40 MB / 0.1 s, "
          f"large 200-500 MB / 0.3 s) on {os.cpu_count()} cores; load average "
          f"{load_before:.1f} before, {load_after:.1f} after")
    print(f"{'executor':<10}{'makespan s':>12}{'machine peak MB':>17}{'tree peak MB':>14}"
          f"{'retries':>9}{'AE memory':>11}")
    for kind, r in results.items():
        retries = f"{r['retries']:d}" if "retries" in r else "-"
        ae = f"{r['ae_memory']:.3f}" if "ae_memory" in r else "-"
        print(f"{kind:<10}{r['makespan']:>12.2f}{r['peak']:>17.0f}{r['tree_peak']:>14.0f}"
              f"{retries:>9}{ae:>11}")
    ratio = results["lfm"]["makespan"] / results["htex"]["makespan"]
    print(f"makespan lfm / htex: {ratio:.2f}")

    print(f"\nOverhead per trivial app ({n_trivial} apps)")
    print(f"{'executor':<10}{'latency ms':>12}{'batch ms/app':>14}")
    for kind, r in results.items():
        print(f"{kind:<10}{r['latency'] * 1e3:>12.1f}{r['batch'] * 1e3:>14.1f}")
    extra = (results["lfm"]["latency"] - results["htex"]["latency"]) * 1e3
    extra_batch = (results["lfm"]["batch"] - results["htex"]["batch"]) * 1e3
    print(f"lfm overhead vs htex: {extra:+.1f} ms per app (sequential), "
          f"{extra_batch:+.1f} ms per app (batch)")


if __name__ == "__main__":
    main(sys.argv[1:])
