"""AutolabelExecutor on real Work Queue: a manager and real ``work_queue_worker``
processes of different sizes on localhost."""
from __future__ import annotations

import json
import os
import signal
import sys
import time

import psutil
import pytest

from lfm import CallKilled, ResourceExhaustion
from lfm.executors import AutolabelExecutor, WorkQueueTaskError, work_queue_available
from lfm.executors.wqimport import INSTALL_HINT, _load_by_path
from doubling import Doubling
from interrupt import interruptible, kill_and_reap
from test_workqueue_calls import boom, hold, site_view

AVAILABLE, WHY = work_queue_available()

SMALL_WORKER = {"cores": 1, "memory": 600, "disk": 2000}
LARGE_WORKER = {"cores": 2, "memory": 1200, "disk": 2000}


def read_rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_import_error_names_the_packages(tmp_path):
    with pytest.raises(ImportError, match="no work_queue.py"):
        _load_by_path(str(tmp_path))
    assert "coop-computing-tools python3-workqueue" in INSTALL_HINT


@pytest.mark.parametrize("workers, words", [
    (2, "workers must be a list of worker sizes (e.g. [{'cores': 2"),
    ({"cores": 1, "memory": 500, "disk": 500}, "got one size {'cores': 1, 'memory': 500, 'disk': 500}: put it in a list"),
    ([{"cores": 1, "memory": 500}], "workers[0] = {'cores': 1, 'memory': 500}: needs exactly cores, memory, disk"),
])
def test_worker_sizes_are_checked_before_anything_starts(workers, words):
    from lfm.executors.workqueue import WorkQueueBackend
    with pytest.raises(ValueError) as info:
        WorkQueueBackend(workers=workers)
    assert words in str(info.value)


def test_task_environment_is_checked_before_anything_starts(tmp_path):
    # a value Work Queue cannot take was refused task by task, inside the manager
    from lfm.executors.workqueue import WorkQueueBackend
    with pytest.raises(ValueError, match="env must map variable names to strings, got 'A': None"):
        WorkQueueBackend(env={"A": None}, staging_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []
    backend = WorkQueueBackend(env={"OMP_NUM_THREADS": 1}, staging_dir=str(tmp_path))
    try:
        assert backend.env == {"OMP_NUM_THREADS": "1"}
    finally:
        backend.shutdown()


@pytest.fixture(scope="module")
def wq_run(tmp_path_factory):
    """One executor with two workers of different sizes running a workload of
    two categories that need different memory."""
    if not AVAILABLE:
        pytest.skip(f"real Work Queue is not installed: {WHY}")
    trace = tmp_path_factory.mktemp("wq") / "trace.jsonl"
    ex = AutolabelExecutor(backend="workqueue", predictor=Doubling(resources=("cores", "memory", "disk"), first=200), trace=trace,
                           workers=[SMALL_WORKER, LARGE_WORKER])
    try:
        small = [ex.submit(hold, 30) for _ in range(3)]
        large = [ex.options(category="large").submit(hold, 300, 0.2) for _ in range(2)]
        failing = ex.submit(boom)
        site = ex.submit(site_view)
        # a declared first guess, still retried: 1000 MB, then the largest worker's 1200 MB
        too_big = ex.options(category="huge", resources={"memory": 1000}).submit(hold, 1500)
        results = {"small": [f.result(timeout=120) for f in small],
                   "large": [f.result(timeout=120) for f in large],
                   "failing": failing.exception(timeout=120),
                   "site": site.result(timeout=120), "runner": ex.backend.runner,
                   "too_big": too_big.exception(timeout=120),
                   "stats": ex.stats(), "workers": list(ex.backend.worker_pids)}
    finally:
        ex.shutdown()
    results["rows"] = read_rows(trace)
    results["executor"] = ex
    return results


@pytest.mark.workqueue
@pytest.mark.skipif(not AVAILABLE, reason=f"real Work Queue is not installed: {WHY}")
def test_futures_labels_and_retries_on_real_workers(wq_run):
    assert wq_run["small"] == [30, 30, 30] and wq_run["large"] == [300, 300]
    rows = [r for r in wq_run["rows"] if r["category"] == "large"]
    by_task = {}
    for row in rows:
        by_task.setdefault(row["task_id"], []).append(row)
    first, second = (sorted(by_task[t], key=lambda r: r["attempt"]) for t in sorted(by_task))
    # the first: 200 MB is too small for 300 MB plus the interpreter; retried larger until it fits
    assert [r["status"] for r in first][-1] == "ok"
    assert first[0]["status"] == "exhausted" and first[0]["alloc_memory"] == 200
    labels = [r["alloc_memory"] for r in first]
    assert labels == sorted(labels) and len(set(labels)) == len(labels)
    # the second, submitted while the first was in flight with no measurement
    # yet: the burst floor (1000 MB), which fits at once
    assert [(r["status"], r["alloc_memory"]) for r in second] == [("ok", 1000)]
    ok = [r for r in wq_run["rows"] if r["status"] == "ok"]
    # Work Queue itself granted each task the label lfm chose
    assert all(r["granted_memory"] == r["alloc_memory"] and r["granted_cores"] == 1 for r in ok)
    assert all(r["backend"] == "workqueue" and r["host"] for r in wq_run["rows"])


@pytest.mark.workqueue
@pytest.mark.skipif(not AVAILABLE, reason=f"real Work Queue is not installed: {WHY}")
def test_errors_and_impossible_labels_on_real_workers(wq_run):
    error = wq_run["failing"]
    assert isinstance(error, KeyError) and "no such thing" in str(error.__cause__)
    exhausted = wq_run["too_big"]
    assert isinstance(exhausted, ResourceExhaustion)
    assert "never fit" in str(exhausted)
    assert [a["label"]["memory"] for a in exhausted.attempts] == [1000, 1200]


@pytest.mark.workqueue
@pytest.mark.skipif(not AVAILABLE, reason=f"real Work Queue is not installed: {WHY}")
def test_local_workers_start_the_runner_without_site_only_when_it_changes_nothing(wq_run):
    from lfm.executors.pystart import site_free_paths
    fast = site_free_paths() is not None
    assert (" -S " in wq_run["runner"]) == fast
    # either way the call sees this environment's prefix and site's builtins
    assert wq_run["site"] == (int(fast), sys.prefix, sys.exec_prefix, True)


@pytest.mark.workqueue
@pytest.mark.skipif(not AVAILABLE, reason=f"real Work Queue is not installed: {WHY}")
def test_stats_per_category_on_real_workers(wq_run):
    stats = wq_run["stats"]
    assert stats.loc["hold", "tasks"] == 3 and stats.loc["hold", "retries"] == 0
    assert stats.loc["large", "tasks"] == 2 and stats.loc["large", "retries"] >= 1
    assert stats.loc["boom", "errors"] == 1 and stats.loc["boom", "attempts"] == 1
    assert 0 < stats.loc["large", "ae_memory"] < 1
    assert stats.loc["large", "label"]["memory"]["first"] >= 300


@pytest.mark.workqueue
@pytest.mark.skipif(not AVAILABLE, reason=f"real Work Queue is not installed: {WHY}")
def test_workers_stopped_at_shutdown(wq_run):
    for pid in wq_run["workers"]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.workqueue
@pytest.mark.skipif(not AVAILABLE, reason=f"real Work Queue is not installed: {WHY}")
def test_a_worker_killed_mid_task_does_not_lose_the_future():
    from lfm.executors.wqlocal import kill_processes_under
    size = {"cores": 1, "memory": 1000, "disk": 2000}
    with AutolabelExecutor(backend="workqueue", predictor=Doubling(resources=("cores", "memory", "disk"), first=300),
                           workers=[size, size]) as ex:
        future = ex.submit(hold, 20, 3.0)
        victim = None
        deadline = time.time() + 60
        while victim is None and time.time() < deadline:
            for proc in ex.backend.local.procs:
                if psutil.Process(proc.pid).children():
                    victim = proc
            time.sleep(0.2)
        assert victim is not None, "the task never started on a worker"
        os.killpg(victim.pid, signal.SIGKILL)      # the machine is gone ...
        kill_processes_under(victim.lfm_workdir)   # ... with the task it was running
        assert future.result(timeout=120) == 20    # Work Queue ran it again on the other worker
        stats = ex.stats()
    assert stats.loc["hold", "ok"] == 1


CTRL_C_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
from test_workqueue_calls import hold
from lfm.executors import AutolabelExecutor
with AutolabelExecutor(backend="workqueue", predictor="max-seen", resources=("memory",),
                       workers=[{{"cores": 1, "memory": 500, "disk": 1000}}]) as ex:
    future = ex.submit(hold, 20, 60)
    print(ex.backend.manager.pid, *ex.backend.worker_pids, ex.backend._staging, flush=True)
    future.result()
"""


@pytest.mark.workqueue
@pytest.mark.skipif(not AVAILABLE, reason=f"real Work Queue is not installed: {WHY}")
def test_ctrl_c_stops_manager_workers_and_tasks():
    import subprocess
    import sys
    tests = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.Popen([sys.executable, "-c", interruptible(CTRL_C_SCRIPT.format(tests=tests))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        *pids, staging = proc.stdout.readline().split()
        pids = [int(p) for p in pids]
        deadline = time.time() + 30
        while not _under(staging) and time.time() < deadline:
            time.sleep(0.2)
        assert _under(staging), "the task never started"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        kill_and_reap(proc)
    assert "KeyboardInterrupt" in proc.stderr.read()
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert _under(staging) == []


def _under(directory):
    """Live processes whose working directory is inside ``directory``."""
    found = []
    for p in psutil.process_iter(["cwd"]):
        cwd = p.info.get("cwd") or ""
        if cwd.startswith(directory):
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p.pid)
            except psutil.Error:
                pass
    return found


@pytest.mark.workqueue
@pytest.mark.skipif(not AVAILABLE, reason=f"real Work Queue is not installed: {WHY}")
@pytest.mark.parametrize("result, status, error, words", [
    ("RESOURCE_EXHAUSTION", "exhausted", ResourceExhaustion, "exceeding its label"),
    ("DISK_ALLOC_FULL", "exhausted", ResourceExhaustion, "outgrew the disk label"),
    ("SIGNAL", "error", CallKilled, "killed by a signal"),
    ("OUTPUT_MISSING", "error", WorkQueueTaskError, "no output file"),
    ("MAX_RETRIES", "error", WorkQueueTaskError, "gave up on the task: result MAX_RETRIES"),
    ("FORSAKEN", "error", WorkQueueTaskError, "result FORSAKEN"),
])
def test_work_queue_result_codes_become_clear_outcomes(tmp_path, result, status, error, words):
    from lfm.executors.backend import Attempt
    from lfm.executors.workqueue import WorkQueueBackend
    backend = WorkQueueBackend(staging_dir=str(tmp_path), verbose=False)
    attempt = Attempt(1, 1, "c", hold, (1,), {}, {"memory": 100.0})
    attempt.handle = ("k", str(tmp_path / "k"), str(tmp_path / "k" / "out.pkl"))
    info = {"host": "node7", "result_name": result, "return_status": 0, "stdout": "tail",
            "submissions": 3}
    outcome = backend._outcome(attempt, info)
    assert outcome.status == status and isinstance(outcome.error, error)
    assert words in str(outcome.error) and outcome.host == "node7"


@pytest.mark.workqueue
@pytest.mark.skipif(not AVAILABLE, reason=f"real Work Queue is not installed: {WHY}")
def test_workers_started_by_the_user_with_the_printed_command(tmp_path, capfd):
    import shlex
    import subprocess
    size = {"cores": 1, "memory": 800, "disk": 1000}
    import sys
    tests = os.path.dirname(os.path.abspath(__file__))
    # what a user states for workers elsewhere: their largest size, and an
    # interpreter there with lfm and the functions' modules importable
    with AutolabelExecutor(backend="workqueue", predictor=Doubling(resources=("cores", "memory", "disk"), first=200), max_resources=size,
                           python=sys.executable, env={"PYTHONPATH": tests}) as ex:
        printed = capfd.readouterr().err
        command = ex.backend.worker_command(size)
        assert "work_queue_worker" in printed and str(ex.backend.port) in printed
        worker = subprocess.Popen(shlex.split(command) + ["--workdir", str(tmp_path)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert ex.submit(hold, 10).result(timeout=60) == 10
        finally:
            worker.terminate()
            worker.wait(timeout=30)
