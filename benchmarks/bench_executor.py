"""AutolabelExecutor on real Work Queue versus Work Queue's own labelling.

Same workload, same two local workers (2 cores / 2,000 MB and 4 cores / 4,000 MB),
one run: N real Python calls of two categories, "inference" (~50 MB, short) and
"simulation" (150-900 MB, varying with the argument), run by

* lfm ``greedy`` and lfm ``exhaustive`` (AutolabelExecutor, backend="workqueue"),
* whole-worker labels (raw Work Queue tasks without a label: a task takes a whole worker),
* Work Queue's own autolabel as Parsl uses it (raw Work Queue API,
  ``enable_monitoring()``, ``specify_category_mode(c, MAX_THROUGHPUT)``, no labels).

Columns: makespan (s), memory and cores AE (Σ used·time / Σ allocated·time; "used" is
lfm's exact peak of the same call, because Work Queue's sampling monitor misses
short peaks; Work Queue's failed attempts are not visible to the caller, so its AE
counts only final attempts and flatters it), retries (attempts beyond the first).

Then trivial-call throughput (tasks/s) of the same function, ``trivial(i)``:
the adapter (AutolabelExecutor on Work Queue: the call and its result travel
as files, the call runs under lfm's monitor) versus raw Work Queue running it
as its ``PythonTask`` does (a ``python -c`` command that loads the pickled
arguments from an input file and writes the pickled result to an output
file, which the manager reads back: Debian's ``PythonTask`` itself needs
``dill`` and a ``python`` on the workers' PATH), and, as a floor, a bare
``python -c "trivial(i)"`` whose result never reaches the manager. In
:data:`ROUNDS` alternating rounds; the best of each is compared (the machine
is shared).

``--quick``: 40 calls and 30 trivial calls instead of 200 and 100.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time

MB = 2 ** 20
#: alternating throughput rounds of the adapter and of raw Work Queue
ROUNDS = 3
WORKERS = [{"cores": 2, "memory": 2000, "disk": 4000}, {"cores": 4, "memory": 4000, "disk": 4000}]


# ---- the workload (module level and light to import: raw Work Queue tasks import it) ----
def simulation_mb(i: int) -> int:
    """Peak memory (MB) simulation(i) allocates: 150-900 MB, varying with i."""
    return 150 + (i * 137) % 751


def inference(i: int) -> int:
    """~50 MB, short: a model lookup."""
    block = b"\1" * (50 * MB)
    total = sum(range(20000 + i))
    time.sleep(0.1)
    del block
    return total


def simulation(i: int) -> int:
    """150-900 MB for 0.3-0.7 s."""
    block = b"\1" * (simulation_mb(i) * MB)
    time.sleep(0.3 + (i % 5) * 0.1)
    del block
    return i


def trivial(i: int) -> int:
    return i + 1


FUNCTIONS = {"inference": inference, "simulation": simulation}


def workload(n: int) -> list[tuple[str, int]]:
    return [("simulation" if k % 2 else "inference", k) for k in range(n)]


# ---- lfm ----------------------------------------------------------------------------
def run_lfm(predictor: str, calls: list[tuple[str, int]]) -> tuple[dict, dict]:
    """Makespan, AE and retries of AutolabelExecutor; also each call's measured
    peak memory and cores, keyed by call index (the "used" of the raw runs)."""
    import json

    from lfm.executors import AutolabelExecutor
    trace = tempfile.mktemp(suffix=".jsonl")
    with AutolabelExecutor(backend="workqueue", predictor=predictor, workers=WORKERS,
                           trace=trace, verbose=False) as ex:
        ex.submit(trivial, 0).result()  # workers connected before the clock starts
        started = time.time()
        futures = [ex.options(category=kind).submit(FUNCTIONS[kind], i) for kind, i in calls]
        failed = sum(1 for f in futures if f.exception() is not None)
        makespan = time.time() - started
        stats = ex.stats()
    usage = {}
    with open(trace) as f:
        for line in f:
            row = json.loads(line)
            if row["status"] == "ok" and row["task_id"] > 1:
                usage[row["task_id"] - 2] = {"memory": row["memory"], "cores": row.get("cores", 0.0)}
    os.unlink(trace)
    stats = stats.drop(index="trivial", errors="ignore")
    return {"makespan_s": makespan, **_ae(stats), "retries": int(stats["retries"].sum()),
            "failed": failed}, usage


def _ae(stats) -> dict:
    return {f"ae_{r}": stats[f"used_{r}_s"].sum() / stats[f"alloc_{r}_s"].sum()
            for r in ("memory", "cores")}


# ---- raw Work Queue -----------------------------------------------------------------
class RawQueue:
    """A raw Work Queue manager with the benchmark's two local workers."""

    def __init__(self, monitoring: bool) -> None:
        from lfm.executors.wqimport import load_work_queue
        self.wq = load_work_queue()
        self.queue = self.wq.WorkQueue(port=0)
        if monitoring:
            self.queue.enable_monitoring()
        self.root = tempfile.mkdtemp(prefix="lfm-bench-wq-")
        self.workers = [subprocess.Popen(
            ["work_queue_worker", f"--cores={w['cores']}", f"--memory={w['memory']}",
             f"--disk={w['disk']}", "--workdir", tempfile.mkdtemp(dir=self.root), "--parent-death",
             "localhost", str(self.queue.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            for w in WORKERS]
        self.env = os.pathsep.join(p for p in sys.path if p and os.path.exists(p))

    def task(self, call: str, category: str, plain: bool = False):
        """A ``python -c`` task running ``call`` (after ``from
        benchmarks.bench_executor import *`` unless ``plain``)."""
        code = call if plain else f"from benchmarks.bench_executor import *; {call}"
        task = self.wq.Task(f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}")
        task.specify_category(category)
        task.specify_environment_variable("PYTHONPATH", os.getcwd() + os.pathsep + self.env)
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):
            # as the lfm backend does for its local workers: without it every
            # task would compile this module from source again
            task.specify_environment_variable("PYTHONPYCACHEPREFIX", os.path.join(self.root, "pycache"))
            task.specify_environment_variable("PYTHONDONTWRITEBYTECODE", "")
        return task

    def run(self, tasks: list, collect=None) -> tuple[float, list]:
        """Submit ``tasks``, wait for all (``collect(task)`` on each as it
        returns); the elapsed seconds and the finished tasks."""
        started = time.time()
        for t in tasks:
            self.queue.submit(t)
        done = []
        while len(done) < len(tasks):
            t = self.queue.wait(5)
            if t is not None:
                if collect is not None:
                    collect(t)
                done.append(t)
        return time.time() - started, done

    def close(self) -> None:
        from lfm.executors.workqueue import _stop_process_group
        for worker in self.workers:
            worker.lfm_workdir = self.root
            _stop_process_group(worker)
        import shutil
        shutil.rmtree(self.root, ignore_errors=True)


def run_raw(mode: str, calls: list[tuple[str, int]], usage: dict) -> dict:
    raw = RawQueue(monitoring=(mode == "max-throughput"))
    try:
        if mode == "max-throughput":
            for category in FUNCTIONS:
                raw.queue.specify_category_mode(category, raw.wq.WORK_QUEUE_ALLOCATION_MODE_MAX_THROUGHPUT)
        raw.run([raw.task("trivial(0)", "warmup")])
        tasks = []
        for index, (kind, i) in enumerate(calls):
            task = raw.task(f"{kind}({i})", kind)
            task.lfm_index = index
            tasks.append(task)
        makespan, done = raw.run(tasks)
    finally:
        raw.close()
    used = {"memory": 0.0, "cores": 0.0}
    alloc = {"memory": 0.0, "cores": 0.0}
    retries = failed = 0
    for t in done:
        wall = max(0.0, (t.execute_cmd_finish - t.execute_cmd_start) / 1e6)
        allocated = t.resources_allocated
        if t.result != 0 or t.return_status != 0:
            failed += 1
        retries += max(0, int(getattr(t, "exhausted_attempts", 0) or 0))
        for r in ("memory", "cores"):
            alloc[r] += max(0.0, float(getattr(allocated, r, 0.0) if allocated else 0.0)) * wall
            if t.result == 0 and t.lfm_index in usage:
                used[r] += usage[t.lfm_index][r] * wall
    return {"makespan_s": makespan, "ae_memory": used["memory"] / alloc["memory"] if alloc["memory"] else float("nan"),
            "ae_cores": used["cores"] / alloc["cores"] if alloc["cores"] else float("nan"),
            "retries": retries, "failed": failed}


# ---- throughput ---------------------------------------------------------------------
def throughput_adapter(n: int) -> float:
    from lfm.executors import AutolabelExecutor
    with AutolabelExecutor(backend="workqueue", predictor="greedy", workers=WORKERS, verbose=False) as ex:
        ex.submit(trivial, 0).result()
        started = time.time()
        results = list(ex.map(trivial, range(n)))
        elapsed = time.time() - started
    assert results == [i + 1 for i in range(n)]
    return n / elapsed


#: what PythonTask's wrapper does: load the function's arguments from an input
#: file, call it, write its result to an output file for the manager
PICKLED_CALL = ("import pickle; from benchmarks.bench_executor import trivial; "
                "pickle.dump(trivial(*pickle.load(open('args.pkl', 'rb'))), open('out.pkl', 'wb'))")


def throughput_raw(n: int, carry_result: bool = True) -> float:
    """Trivial calls through raw Work Queue. ``carry_result``: as Work Queue's
    own ``PythonTask`` runs a function (its arguments travel to the worker
    pickled in an input file, the result comes back in an output file, which
    the manager unpickles); otherwise ``python -c "trivial(i)"``, whose result
    never reaches the manager."""
    import pickle
    raw = RawQueue(monitoring=False)
    try:
        raw.run([raw.task("trivial(0)", "warmup")])
        tasks = []
        for i in range(n):
            if carry_result:
                task = raw.task(PICKLED_CALL, "trivial", plain=True)
                args, out = os.path.join(raw.root, f"args{i}.pkl"), os.path.join(raw.root, f"out{i}.pkl")
                with open(args, "wb") as f:
                    pickle.dump((i,), f)
                task.specify_input_file(args, "args.pkl", cache=False)
                task.specify_output_file(out, "out.pkl", cache=False)
                task.lfm_out = out
            else:
                task = raw.task(f"trivial({i})", "trivial")
            for resource, value in (("cores", 1), ("memory", 100), ("disk", 100)):
                getattr(task, f"specify_{resource}")(value)
            tasks.append(task)
        elapsed, done = raw.run(tasks, collect=_read_result if carry_result else None)
    finally:
        raw.close()
    assert all(t.result == 0 and t.return_status == 0 for t in done)
    if carry_result:
        assert sorted(t.lfm_value for t in done) == [i + 1 for i in range(n)]
    return n / elapsed


def _read_result(task) -> None:
    import pickle
    with open(task.lfm_out, "rb") as f:
        task.lfm_value = pickle.load(f)


HEADER = f"{'labelling':<28} {'makespan s':>10} {'AE memory':>9} {'AE cores':>8} {'retries':>7} {'failed':>6}"


def _row(name: str, r: dict) -> str:
    return (f"{name:<28} {r['makespan_s']:>10.1f} {r['ae_memory']:>9.3f} {r['ae_cores']:>8.3f} "
            f"{r['retries']:>7d} {r['failed']:>6d}")


def main(argv: list[str]) -> None:
    from lfm.executors import work_queue_available
    ok, why = work_queue_available()
    if not ok:
        print(f"skipped: {why}")
        return
    quick = "--quick" in argv
    n, n_trivial = (40, 30) if quick else (200, 100)
    calls = workload(n)
    print(f"{n} calls ({n // 2} inference ~50 MB, {n - n // 2} simulation 150-900 MB) on workers "
          f"{WORKERS}", flush=True)
    print(HEADER, flush=True)
    greedy, usage = run_lfm("greedy", calls)
    print(_row("lfm greedy", greedy), flush=True)
    print(_row("lfm exhaustive", run_lfm("exhaustive", calls)[0]), flush=True)
    print(_row("whole worker (WQ, no labels)", run_raw("whole", calls, usage)), flush=True)
    wq_mt = run_raw("max-throughput", calls, usage)
    print(_row("WQ MAX_THROUGHPUT autolabel", wq_mt), flush=True)
    print(f"target: lfm greedy makespan <= WQ MAX_THROUGHPUT's: "
          f"{greedy['makespan_s']:.1f} vs {wq_mt['makespan_s']:.1f} s; "
          f"AE memory {greedy['ae_memory']:.3f} vs {wq_mt['ae_memory']:.3f}", flush=True)
    # this machine is shared: alternate the three, report each one's best round
    runs = {"adapter": lambda: throughput_adapter(n_trivial),
            "raw": lambda: throughput_raw(n_trivial),
            "bare": lambda: throughput_raw(n_trivial, carry_result=False)}
    rounds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, run in runs.items():
            rounds[name].append(run())
    best = {name: max(values) for name, values in rounds.items()}

    def show(values: list[float]) -> str:
        return " ".join(f"{v:.2f}" for v in values)
    names = {"adapter": "adapter (AutolabelExecutor)",
             "raw": "raw WQ, as PythonTask runs it",
             "bare": "raw WQ python -c, no result"}
    print(f"\n{'trivial calls':<31} {'tasks/s':>8}   rounds (load average {os.getloadavg()[0]:.1f})")
    for name, label in names.items():
        print(f"{label:<31} {best[name]:>8.2f}   {show(rounds[name])}")
    print(f"ratio adapter/raw Work Queue (best rounds): {best['adapter'] / best['raw']:.2f} "
          f"(target >= 0.80); against python -c whose result is dropped: "
          f"{best['adapter'] / best['bare']:.2f}", flush=True)

if __name__ == "__main__":
    main(sys.argv[1:])
