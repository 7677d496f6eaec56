"""Parsl workflows through ``lfm.parsl.WorkQueueExecutor``: against Parsl's
``HighThroughputExecutor``, and lfm's labels against a fixed user guess.

(a) **lfm vs HTEX.** The same apps through Parsl, each executor with one
``LocalProvider`` block on this machine at the same concurrency: lfm's block
is one ``work_queue_worker --cores=C`` (C = this machine's cores) whose apps
are labelled by lfm's default predictor (``autolabel=True``, ``auto``), HTEX's
is one worker pool with ``max_workers_per_node=C``. Two apps, run in turn:
``crunch`` (CPU-bound: a fixed pure-Python loop, about 0.3 s of one core) and
``hold`` (memory-bound: 200-500 MB, varying with the argument, held 0.5 s).
Columns: makespan (s, first submission to last result, workers already up),
apps per second, and for lfm its exhaustion retries and memory efficiency
(Σ used·time / Σ allocated·time, failed attempts included).

(b) **lfm's labels vs a user's guess.** ``hold`` apps on one worker of 4
cores and 4,000 MB (``worker_options="--cores=4 --memory=4000 --disk=8000"``):
``autolabel=True`` (predictor ``auto``) against ``autolabel=False`` with
``parsl_resource_specification={"cores": 1, "memory": 2000, "disk": 500}``, a
fixed guess of 2,000 MB per app (which fits every app: no retries, but two at
a time); and lfm with ``autolabel_window=5`` (a burst of the category waits
for 5 of its tasks before it is labelled). Columns: makespan, retries, memory
efficiency.

Every executor lives in one DataFlowKernel; the workloads run one after the
other (the idle executors' workers wait without using the machine).
``--quick``: 16 + 16 apps in (a) and 24 in (b), instead of 60 + 60 and 80.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

MB = 2 ** 20
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: (b)'s worker: cores, memory MB, disk MB; and the user's fixed guess per app
WORKER = {"cores": 4, "memory": 4000, "disk": 8000}
GUESS = {"cores": 1, "memory": 2000, "disk": 500}


# ---- the apps (module level: workers import this module by name) -----------------------
def hold_mb(i: int) -> int:
    """Peak memory (MB) hold(i) allocates: 200-500 MB."""
    return 200 + (i * 37) % 301


def crunch(i: int) -> int:
    """CPU-bound: a fixed amount of pure-Python work (about 0.3 s of one core here)."""
    total = 0
    for k in range(2_000_000):
        total += k * k
    return total % 7 + i * 0


def hold(i: int, seconds: float = 0.5, parsl_resource_specification: dict = {}) -> int:  # noqa: B006
    """Memory-bound: hold_mb(i) MB (every page written) for ``seconds``."""
    block = bytearray(hold_mb(i) * MB)
    time.sleep(seconds)
    return len(block) // MB


def trivial(i: int) -> int:
    return i


# ---- the executors -------------------------------------------------------------------
def executors(cores: int) -> list:
    """lfm's WorkQueueExecutor (one C-core worker), HTEX (C workers), and the
    two executors of (b): lfm's labels and the fixed guess (4-core workers)."""
    from parsl.executors import HighThroughputExecutor
    from parsl.providers import LocalProvider

    from lfm.parsl import WorkQueueExecutor

    # HTEX starts interchange.py and process_worker_pool.py from PATH
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "")])

    def block() -> LocalProvider:
        return LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1,
                             worker_init=f"export PYTHONPATH={REPO}:$PYTHONPATH")

    size = " ".join(f"--{r}={v}" for r, v in WORKER.items())
    return [
        WorkQueueExecutor(label="lfm", port=0, autolabel=True, provider=block(),
                          worker_options=f"--cores={cores}"),
        HighThroughputExecutor(label="htex", max_workers_per_node=cores, cores_per_worker=1,
                               provider=block()),
        WorkQueueExecutor(label="lfm-auto", port=0, autolabel=True, provider=block(),
                          worker_options=size),
        WorkQueueExecutor(label="lfm-window5", port=0, autolabel=True, autolabel_window=5,
                          provider=block(), worker_options=size),
        WorkQueueExecutor(label="user-2000", port=0, autolabel=False, provider=block(),
                          worker_options=size),
    ]


def wait_for_worker(ex, timeout: float = 300) -> None:
    """Until a worker of lfm's WorkQueueExecutor ``ex`` is connected."""
    deadline = time.monotonic() + timeout
    while not ex.lfm_executor.backend.max_resources():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no worker of {ex.label} connected within {timeout} s")
        time.sleep(0.2)


def timed(futures_of) -> tuple[float, list]:
    """Seconds from the first submission to the last result, and the results."""
    t0 = time.perf_counter()
    futures = futures_of()
    results = [f.result() for f in futures]
    return time.perf_counter() - t0, results


def efficiency(ex, categories: list[str]) -> tuple[int, float]:
    """(exhaustion retries, memory efficiency) of an lfm executor's categories."""
    stats = ex.stats().loc[categories]
    alloc = stats["alloc_memory_s"].sum()
    return int(stats["retries"].sum()), (stats["used_memory_s"].sum() / alloc if alloc else float("nan"))


def run(n_each: int, n_guess: int, run_dir: str) -> dict:
    import parsl
    from parsl import Config, python_app

    cores = os.cpu_count() or 1
    exs = executors(cores)
    apps = {ex.label: {fn.__name__: python_app(fn, executors=[ex.label])
                       for fn in (crunch, hold, trivial)} for ex in exs}
    parsl.load(Config(executors=exs, run_dir=run_dir, strategy_period=1))
    try:
        # every block's workers up before any clock starts; lfm's executors are
        # not warmed up with an app, which would teach their predictors first
        apps["htex"]["trivial"](0).result(timeout=300)
        for ex in exs:
            if ex.label != "htex":
                wait_for_worker(ex)
        out: dict = {"a": {}, "b": {}}
        for app in ("crunch", "hold"):
            for label in ("lfm", "htex"):
                seconds, results = timed(lambda: [apps[label][app](i) for i in range(n_each)])
                if app == "hold":
                    assert results == [hold_mb(i) for i in range(n_each)], results[:4]
                out["a"][label, app] = {"makespan": seconds, "rate": n_each / seconds}
            retries, ae = efficiency(exs[0], [app])
            out["a"]["lfm", app].update(retries=retries, ae=ae)
        spec = {"user-2000": GUESS, "lfm-auto": {}, "lfm-window5": {}}
        for label in spec:
            seconds, results = timed(lambda: [
                apps[label]["hold"](i, 1.0, parsl_resource_specification=spec[label])
                for i in range(n_guess)])
            assert results == [hold_mb(i) for i in range(n_guess)], results[:4]
            ex = next(e for e in exs if e.label == label)
            retries, ae = efficiency(ex, ["hold"])
            out["b"][label] = {"makespan": seconds, "retries": retries, "ae": ae}
        return out
    finally:
        parsl.dfk().cleanup()
        parsl.clear()


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    n_each, n_guess = (16, 24) if quick else (60, 80)
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="lfm-bench-parsl-") as tmp:
        out = run(n_each, n_guess, tmp)
    load_after = os.getloadavg()[0]

    print(f"\n(a) lfm.parsl.WorkQueueExecutor vs Parsl's HighThroughputExecutor: {n_each} apps each, "
          f"one LocalProvider block each, {cores} slots (lfm: one worker of {cores} cores, "
          f"autolabel with predictor auto; htex: max_workers_per_node={cores}); load average "
          f"{load_before:.1f} before, {load_after:.1f} after")
    print(f"{'app':<8}{'executor':<10}{'makespan s':>12}{'apps/s':>9}{'retries':>9}{'AE memory':>11}")
    for (label, app), r in out["a"].items():
        retries = f"{r['retries']:d}" if "retries" in r else "-"
        ae = f"{r['ae']:.3f}" if "ae" in r else "-"
        print(f"{app:<8}{label:<10}{r['makespan']:>12.2f}{r['rate']:>9.2f}{retries:>9}{ae:>11}")
    for app in ("crunch", "hold"):
        ratio = out["a"]["lfm", app]["makespan"] / out["a"]["htex", app]["makespan"]
        print(f"makespan lfm / htex, {app}: {ratio:.2f}")

    print(f"\n(b) lfm's labels vs a fixed guess of {GUESS['memory']} MB per app: {n_guess} hold apps "
          f"(200-500 MB, 1 s) on one worker of {WORKER['cores']} cores, {WORKER['memory']} MB")
    print(f"{'labels':<42}{'makespan s':>12}{'retries':>9}{'AE memory':>11}")
    names = {"user-2000": "user guess: 1 core, 2000 MB, 500 MB disk",
             "lfm-auto": "lfm autolabel (predictor auto)",
             "lfm-window5": "lfm autolabel, autolabel_window=5"}
    for label in names:
        r = out["b"][label]
        print(f"{names[label]:<42}{r['makespan']:>12.2f}{r['retries']:>9d}{r['ae']:>11.3f}")
    speedup = out["b"]["user-2000"]["makespan"] / out["b"]["lfm-auto"]["makespan"]
    print(f"makespan guess / lfm: {speedup:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
