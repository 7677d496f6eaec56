"""AutolabelExecutor on the embedded local backend: real monitored processes,
real limits, a real (small) predictor."""
from __future__ import annotations

import concurrent.futures as cf
import json
import os
import time

import psutil
import pytest

from lfm import ResourceExhaustion
from lfm.executors import DEFAULT_CATEGORY, AutolabelExecutor, LocalBackend
from doubling import Doubling
from interrupt import interruptible, kill_and_reap

MB = 2 ** 20
SMALL = {"cores": 2, "memory": 2000, "disk": 2000}


def hold(mb, seconds=0.0):
    """Touch ``mb`` MB, keep it ``seconds``; return (start, end) epoch s."""
    start = time.time()
    block = b"\1" * int(mb * MB)
    time.sleep(seconds)
    del block
    return start, time.time()


def square(x):
    return x * x


def boom(x):
    raise ValueError(f"boom {x}")


def read_rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_results_map_order_and_exceptions_not_retried(tmp_path):
    trace = tmp_path / "trace.jsonl"
    with AutolabelExecutor(predictor=Doubling(), capacity=SMALL, trace=trace) as ex:
        assert list(ex.map(square, range(4))) == [0, 1, 4, 9]
        future = ex.submit(boom, 7)
        with pytest.raises(ValueError, match="boom 7") as info:
            future.result(timeout=60)
        assert "boom" in str(info.value.__cause__)  # the remote traceback travels with it
        stats = ex.stats()
    assert stats.loc["square", "tasks"] == 4 and stats.loc["square", "retries"] == 0
    assert stats.loc["boom", "attempts"] == 1 and stats.loc["boom", "errors"] == 1
    rows = read_rows(trace)
    assert sorted(r["status"] for r in rows) == ["error"] + ["ok"] * 4
    assert all(r["backend"] == "local" for r in rows)
    # the first square and boom (alone in its category): the predictor's 100 MB;
    # squares 2-4, submitted while the first was in flight: the burst floor
    labels = {r["task_id"]: r["alloc_memory"] for r in rows}
    assert labels == {1: 100, 2: 1000, 3: 1000, 4: 1000, 5: 100}, labels


def test_exhaustion_retries_with_a_larger_label_and_learns(tmp_path):
    trace = tmp_path / "trace.jsonl"
    with AutolabelExecutor(predictor=Doubling(first=100), capacity=SMALL, trace=trace) as ex:
        assert ex.submit(hold, 250).result(timeout=60)
        stats = ex.stats()
        # the predictor learnt the peak: the next call of the category starts above 250 MB
        assert ex.predictor.predict("hold")["memory"] >= 250
    rows = read_rows(trace)
    assert [(r["status"], r["alloc_memory"], r["attempt"]) for r in rows] == \
        [("exhausted", 100, 1), ("exhausted", 200, 2), ("ok", 400, 3)]
    assert rows[-1]["memory"] >= 250 and rows[0]["task_id"] == rows[-1]["task_id"]
    assert stats.loc["hold", "retries"] == 2 and stats.loc["hold", "tasks_retried"] == 1
    assert 0 < stats.loc["hold", "ae_memory"] < 1


@pytest.mark.timeout(120)
def test_a_burst_of_a_new_category_starts_at_the_published_cold_start(tmp_path):
    """Calls submitted while the category's first call (no measurement yet) is
    in flight get at least 1000 MB, so a burst does not outgrow a probing
    label together; once a call succeeded, labels are the predictor's again."""
    trace = tmp_path / "trace.jsonl"
    with AutolabelExecutor(predictor=Doubling(first=20), capacity=SMALL, trace=trace) as ex:
        burst = [ex.submit(hold, 150, 0.3) for _ in range(5)]
        assert all(len(f.result(timeout=90)) == 2 for f in burst)
        ex.submit(hold, 150).result(timeout=60)
    rows = read_rows(trace)
    first = {r["task_id"]: r["alloc_memory"] for r in rows if r["attempt"] == 1}
    assert first[1] == 20  # the first call: the predictor's (probing) label
    assert [first[t] for t in range(2, 6)] == [1000.0] * 4, first
    assert first[6] < 1000  # learnt: the largest usage seen, about 150 MB
    retried = {r["task_id"] for r in rows if r["status"] == "exhausted"}
    assert retried == {1}, rows


def test_max_retries_and_impossible_label_fail_with_history():
    with AutolabelExecutor(predictor=Doubling(first=100), capacity=SMALL, max_retries=1) as ex:
        with pytest.raises(ResourceExhaustion, match="max_retries=1") as info:
            ex.submit(hold, 600).result(timeout=60)
        assert [a["label"]["memory"] for a in info.value.attempts] == [100, 200]
        assert all(a["status"] == "exhausted" for a in info.value.attempts)
    small = {"cores": 1, "memory": 300, "disk": 500}
    with AutolabelExecutor(predictor=Doubling(first=200), capacity=small) as ex:
        with pytest.raises(ResourceExhaustion, match="never fit") as info:
            ex.submit(hold, 500).result(timeout=60)
        # 200 MB, then capped at the capacity (300 MB), then no larger label exists
        assert [a["label"]["memory"] for a in info.value.attempts] == [200, 300]


def test_packing_small_tasks_beside_a_big_one_and_big_waits():
    capacity = {"cores": 4, "memory": 1000, "disk": 1000}
    with AutolabelExecutor(predictor=Doubling(), autolabel=False, capacity=capacity) as ex:
        big = ex.options(resources={"memory": 700, "cores": 1})
        small = ex.options(resources={"memory": 250, "cores": 1})
        # a big and a small one fit together (950 <= 1000 MB) ...
        b1, s1 = big.submit(hold, 50, 1.0), small.submit(hold, 50, 1.0)
        # ... a second big one must wait for the first
        b2 = big.submit(hold, 50, 0.2)
        (b1s, b1e), (s1s, s1e), (b2s, _) = (f.result(timeout=60) for f in (b1, s1, b2))
    assert s1s < b1e and b1s < s1e, "the small task did not run beside the big one"
    assert b2s >= b1e - 0.05, "the second big task started before the first freed its memory"


def test_declared_hard_limits_and_whole_worker_without_autolabel(tmp_path):
    trace = tmp_path / "t.jsonl"
    with AutolabelExecutor(predictor=Doubling(), autolabel=False, capacity=SMALL, trace=trace,
                           autocategory=False) as ex:
        assert ex.submit(square, 3).result(timeout=60) == 9
        with pytest.raises(ResourceExhaustion, match="hard limits"):
            ex.options(category="tight", resources={"memory": 100}).submit(hold, 300).result(timeout=60)
        assert set(ex.stats().index) == {DEFAULT_CATEGORY, "tight"}
    first, second = read_rows(trace)
    assert first["alloc_memory"] == SMALL["memory"] and first["category"] == DEFAULT_CATEGORY
    assert second["alloc_memory"] == 100 and second["status"] == "exhausted"


def test_declared_resources_are_a_first_guess_with_autolabel(tmp_path):
    trace = tmp_path / "t.jsonl"
    with AutolabelExecutor(predictor=Doubling(), capacity=SMALL, trace=trace) as ex:
        ex.options(resources={"memory": 150}).submit(hold, 200).result(timeout=60)
    assert [r["alloc_memory"] for r in read_rows(trace)] == [150, 300]


def test_shutdown_cancels_queued_calls_and_leaves_no_processes(baseline):
    ex = AutolabelExecutor(predictor=Doubling(), capacity={"cores": 1, "memory": 1000, "disk": 1000})
    futures = [ex.submit(hold, 10, 0.5) for _ in range(3)]
    time.sleep(0.2)
    ex.shutdown(wait=True, cancel_futures=True)
    assert futures[0].result()  # it was running: it finished
    assert all(f.cancelled() for f in futures[1:])
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(square, 1)
    assert _children_gone(baseline)


def test_kill_stops_running_calls_without_orphans(baseline):
    ex = AutolabelExecutor(predictor=Doubling(), capacity=SMALL)
    future = ex.submit(hold, 10, 30)
    time.sleep(1.0)
    started = time.time()
    ex.kill()
    with pytest.raises((cf.CancelledError, Exception)):
        future.result(timeout=20)
    assert time.time() - started < 15
    assert _children_gone(baseline)


def test_bad_input_is_reported_clearly():
    with pytest.raises(ValueError, match="known backends: local, workqueue"):
        AutolabelExecutor(backend="slurm")
    with pytest.raises(ValueError, match="unknown capacity resource"):
        LocalBackend(capacity={"gpus": 1})
    with pytest.raises(ValueError, match="resources: unknown resource 'gpus'; known resources: cores, memory"):
        AutolabelExecutor(resources=("memory", "gpus"))
    with pytest.raises(ValueError, match="max_retries must be a whole number >= 0, got 'x'"):
        AutolabelExecutor(max_retries="x")
    with pytest.raises(ValueError, match="the directory '/nonexistent' does not exist"):
        AutolabelExecutor(trace="/nonexistent/calls.lfm.jsonl")
    with pytest.raises(TypeError, match="trace must be None, a path or an object with append"):
        AutolabelExecutor(trace=5)
    with AutolabelExecutor(predictor=Doubling(), capacity=SMALL) as ex:
        with pytest.raises(ValueError, match="unknown resource 'ram'"):
            ex.options(resources={"ram": 10})
        with pytest.raises(ValueError, match="declared resources must be a mapping resource -> amount"):
            ex.options(resources=[800, 1])
        with pytest.raises(TypeError, match="callable"):
            ex.submit(42)
        for bad in ("", 5, ("sim",)):
            with pytest.raises(ValueError, match="category must be a non-empty string"):
                ex.options(category=bad)
    with pytest.raises(ValueError, match="unknown predictor 'nope'; known predictors: .*greedy"):
        AutolabelExecutor(predictor="nope")


def _descendants():
    """(direct children, number of live descendants) of this process."""
    me = psutil.Process(os.getpid())
    live = [p for p in me.children(recursive=True) if _alive(p)]
    return {p.pid for p in me.children() if _alive(p)}, len(live)


def _alive(proc):
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture
def baseline():
    """This process's descendants once lfm's long-lived fork server is up (it
    keeps a spare forked process ready): what may remain after an executor."""
    from lfm.monitor import run_call
    run_call(square, (2,))
    time.sleep(0.2)
    return _descendants()


def _children_gone(baseline, timeout=10.0):
    """No new child, and no more descendants than the fork server keeps idle."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        children, count = _descendants()
        if children <= baseline[0] and count <= baseline[1]:
            return True
        time.sleep(0.1)
    return False


CTRL_C_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
from test_workqueue_calls import hold
from lfm.executors import AutolabelExecutor
with AutolabelExecutor(predictor="max-seen", resources=("memory",),
                       capacity={{"cores": 2, "memory": 2000, "disk": 2000}}) as ex:
    futures = [ex.submit(hold, 20, 60) for _ in range(3)]
    print("running", flush=True)
    futures[0].result()
"""


def test_ctrl_c_leaves_no_orphan_processes():
    import signal
    import subprocess
    import sys
    tests = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.Popen([sys.executable, "-c", interruptible(CTRL_C_SCRIPT.format(tests=tests))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "running"
        deadline, seen = time.time() + 30, -1  # until the calls' processes are up (and settled)
        while time.time() < deadline and not (seen >= 3 and len(_session(proc.pid)) == seen):
            seen = len(_session(proc.pid))
            time.sleep(0.2)
        assert len(_session(proc.pid)) >= 3
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        kill_and_reap(proc, group=True)
    assert "KeyboardInterrupt" in proc.stderr.read()
    deadline = time.time() + 10
    while _session(proc.pid) and time.time() < deadline:
        time.sleep(0.1)
    assert _session(proc.pid) == []


def _session(sid):
    """Live processes of session ``sid``."""
    found = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p.pid)
        except (OSError, psutil.Error):
            pass
    return found


def test_a_big_task_that_waited_is_not_overtaken_forever():
    capacity = {"cores": 4, "memory": 1000, "disk": 1000}
    with AutolabelExecutor(predictor=Doubling(), autolabel=False, capacity=capacity,
                           backfill_wait=0.3) as ex:
        half = ex.options(resources={"memory": 500})
        whole = ex.options(resources={"memory": 1000})
        first = half.submit(hold, 20, 2.0)
        big = whole.submit(hold, 20, 0.1)
        time.sleep(0.8)  # the big one has now waited longer than backfill_wait
        late = half.submit(hold, 20, 0.1)  # it would fit beside `first`, but must not overtake
        (_, first_end), (big_start, _), (late_start, _) = (f.result(timeout=60) for f in (first, big, late))
    assert big_start >= first_end - 0.05
    assert late_start >= big_start


def test_extra_task_options_are_checked_before_they_reach_work_queue():
    # a bad option used to raise inside the manager process, which then exited
    with AutolabelExecutor(predictor=Doubling(), capacity=SMALL) as ex:
        for extra, words in [({"priority": "high"}, "priority must be a number, got 'high'"),
                             ({"running_time_min": float("inf")}, "running_time_min must be a number"),
                             ({"gpus": -1}, "gpus must be >= 0"), ({"gpus": 0.5}, "whole number of GPUs"),
                             ({"bogus": 1}, "unknown extra task option 'bogus'; known: gpus, priority")]:
            with pytest.raises(ValueError, match=words):
                ex.options(extra=extra)
        assert ex.options(extra={"priority": -2, "gpus": None}).submit(abs, -3).result(timeout=60) == 3
