"""Work Queue trust items on real workers: RUNNING only once dispatched,
cancellation of queued calls, the largest *connected* worker and the fit
timeout, BaseException in a call, the backend options Parsl needs."""
from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

import lfm
from lfm import MonitorError, ResourceExhaustion
from lfm.executors import AutolabelExecutor, WorkQueueTaskError, work_queue_available
from doubling import Doubling
from test_workqueue_calls import (exit_with, generator_exit, getenv, hold, interrupt, touch,
                                  where, write_mb)

AVAILABLE, WHY = work_queue_available()
TESTS = os.path.dirname(os.path.abspath(__file__))
ONE = {"cores": 1, "memory": 700, "disk": 1500}

pytestmark = [pytest.mark.workqueue,
              pytest.mark.skipif(not AVAILABLE, reason=f"real Work Queue is not installed: {WHY}")]


def predictor(first=200):
    return Doubling(resources=("cores", "memory", "disk"), first=first)


def until(condition, timeout=60.0, what="the condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def start_worker(backend, size, workdir):
    """A worker started as a user would, with the backend's printed command."""
    command = shlex.split(backend.worker_command(size)) + ["--workdir", str(workdir)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop_worker(worker):
    from lfm.executors.wqlocal import stop_process_group
    stop_process_group(worker)


def remote_options(**options):
    """Backend options for workers the test starts itself: this interpreter, the tests' modules."""
    return {"python": sys.executable, "env": {"PYTHONPATH": TESTS}, "verbose": False, **options}


@pytest.mark.timeout(120)
def test_a_call_is_running_only_once_dispatched_and_a_queued_one_cancels(tmp_path):
    with AutolabelExecutor(backend="workqueue", predictor=predictor(), workers=[ONE]) as ex:
        first = ex.submit(hold, 10, 6.0)
        # (submitted together, Work Queue would dispatch the newer one first)
        until(first.running, what="the first call starting on the worker")
        queued = ex.submit(touch, str(tmp_path / "queued-ran"))
        time.sleep(1.5)  # two of the manager's wait() rounds
        # one 1-core worker: the second call waits in Work Queue's queue
        assert not queued.running() and not queued.done()
        assert queued.cancel() is True
        assert queued.cancelled() is True
        assert first.cancel() is False  # dispatched: it runs to the end
        assert first.result(timeout=60) == 10
        # the executor goes on after the cancellation
        assert ex.submit(hold, 5).result(timeout=60) == 5
    assert not (tmp_path / "queued-ran").exists()


@pytest.mark.timeout(120)
def test_shutdown_cancel_futures_cancels_every_call_not_dispatched(tmp_path):
    ex = AutolabelExecutor(backend="workqueue", predictor=predictor(), workers=[ONE])
    try:
        first = ex.submit(hold, 10, 6.0)
        until(first.running, what="the first call starting on the worker")
        later = [ex.submit(touch, str(tmp_path / f"ran-{i}")) for i in range(3)]
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
    assert first.result(timeout=1) == 10
    assert [f.cancelled() for f in later] == [True, True, True]
    assert sorted(os.listdir(tmp_path)) == []


@pytest.mark.timeout(120)
def test_max_resources_is_the_largest_connected_worker(tmp_path):
    with AutolabelExecutor(backend="workqueue", predictor=predictor(),
                           **remote_options()) as ex:
        assert ex.backend.max_resources() == {}
        small = start_worker(ex.backend, {"cores": 1, "memory": 600, "disk": 1000}, tmp_path)
        large = None
        try:
            # known while idle: no task has been submitted yet
            until(lambda: ex.backend.max_resources() == {"cores": 1, "memory": 600, "disk": 600},
                  what="the first worker's size reported")
            large = start_worker(ex.backend, {"cores": 2, "memory": 900, "disk": 2000}, tmp_path)
            # disk counts as at most the worker's memory (see lfm.executors.workqueue)
            until(lambda: ex.backend.max_resources() == {"cores": 2, "memory": 900, "disk": 900},
                  what="the larger worker's size reported")
            # labels are capped to it: a 5000 MB guess runs as 900 MB
            future = ex.options(resources={"memory": 5000}).submit(hold, 10)
            assert future.result(timeout=60) == 10
            assert ex.stats().loc["hold", "ok"] == 1
        finally:
            stop_worker(small)
            if large is not None:
                stop_worker(large)
        until(lambda: ex.backend.max_resources() == {}, what="the workers' departure reported")


@pytest.mark.timeout(120)
def test_a_call_no_connected_worker_fits_fails_after_fit_timeout(tmp_path):
    with AutolabelExecutor(backend="workqueue", predictor=predictor(), autolabel=False,
                           **remote_options(fit_timeout=1.0)) as ex:
        # declared before any worker is known: nothing caps it
        too_big = ex.options(resources={"cores": 1, "memory": 5000, "disk": 100}).submit(hold, 10)
        time.sleep(2.0)  # twice fit_timeout, no worker connected: it waits, without limit
        assert not too_big.done()
        worker = start_worker(ex.backend, {"cores": 1, "memory": 700, "disk": 1000}, tmp_path)
        try:
            started = time.time()
            error = too_big.exception(timeout=60)
            waited = time.time() - started
            assert isinstance(error, ResourceExhaustion), error
            message = str(error)
            assert "memory 5000" in message and "memory 700" in message
            assert "fit_timeout=1 s" in message and error.exceeded == {"memory": 5000}
            assert 1.0 <= waited < 20
            # a call that fits still runs on that worker
            fits = ex.options(resources={"cores": 1, "memory": 300, "disk": 100}).submit(hold, 5)
            assert fits.result(timeout=60) == 5
        finally:
            stop_worker(worker)


@pytest.mark.timeout(120)
def test_fit_timeout_is_checked():
    from lfm.executors.workqueue import WorkQueueBackend
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match=r"fit_timeout \(or None: wait for ever\) must be a positive number"):
            WorkQueueBackend(fit_timeout=bad, verbose=False)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("fn, args, kind, words", [
    (exit_with, (3,), "CallExited", "exit_with called sys.exit(3)"),
    (interrupt, (), "CallAborted", "interrupt raised KeyboardInterrupt('pressed in the call')"),
    (generator_exit, (), "CallAborted", "generator_exit raised GeneratorExit"),
])
def test_a_base_exception_in_the_call_is_its_own_outcome(fn, args, kind, words):
    with AutolabelExecutor(backend="workqueue", predictor=predictor(), workers=[ONE]) as ex:
        error = ex.submit(fn, *args).exception(timeout=60)
        assert isinstance(error, MonitorError) and not isinstance(error, WorkQueueTaskError)
        assert isinstance(error, getattr(lfm, kind))
        assert words in str(error)
        assert "installed" not in str(error)
        # capacity released, the executor goes on
        assert ex.submit(hold, 5).result(timeout=60) == 5
        stats = ex.stats()
    assert stats.loc[fn.__qualname__, "errors"] == 1 and stats.loc[fn.__qualname__, "attempts"] == 1


@pytest.mark.timeout(120)
def test_init_command_env_debug_log_and_the_callers_port(tmp_path):
    with socket.socket() as s:
        s.bind(("", 0))
        port = s.getsockname()[1]
    log = tmp_path / "wq-debug.log"
    with AutolabelExecutor(backend="workqueue", predictor=predictor(), workers=[ONE], port=port,
                           init_command="export LFM_INIT_RAN=yes", env={"LFM_ENV": "given"},
                           debug_log=str(log), task_retries=2) as ex:
        assert ex.backend.port == port
        assert ex.submit(getenv, "LFM_INIT_RAN").result(timeout=60) == "yes"
        assert ex.submit(getenv, "LFM_ENV").result(timeout=60) == "given"
        sandbox = ex.submit(where).result(timeout=60)
        workdir = os.path.realpath(ex.backend.local.procs[0].lfm_workdir)
    # the call ran in its task's sandbox, inside the worker's directory
    assert os.path.realpath(sandbox).startswith(workdir + os.sep)
    assert log.stat().st_size > 0


@pytest.mark.timeout(60)
def test_no_manager_or_worker_left_behind():
    ex = AutolabelExecutor(backend="workqueue", predictor=predictor(), workers=[ONE])
    pids = [ex.backend.manager.pid, *ex.backend.worker_pids]
    assert ex.submit(hold, 5).result(timeout=60) == 5
    ex.shutdown()
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_unfit_tasks_start_their_clock_when_they_stop_fitting_and_reset_when_they_fit():
    from lfm.executors.wqworkers import unfit_tasks
    since = {}
    needs = {"a": {"cores": 1, "memory": 900}, "b": {"cores": 1, "memory": 100}}
    largest = {"cores": 2, "memory": 700, "disk": 700}
    assert unfit_tasks(needs, largest, since, 100.0, 5.0) == [] and since == {"a": 100.0}
    assert unfit_tasks(needs, largest, since, 104.0, 5.0) == []
    assert unfit_tasks(needs, largest, since, 105.0, 5.0) == [("a", {"memory": 900})]
    # a worker that fits connects: the clock stops
    assert unfit_tasks(needs, {**largest, "memory": 1000}, since, 106.0, 5.0) == [] and since == {}


@pytest.mark.timeout(120)
def test_shutdown_without_waiting_returns_at_once_and_the_calls_still_finish():
    ex = AutolabelExecutor(backend="workqueue", predictor=predictor(), workers=[ONE])
    pids = [ex.backend.manager.pid, *ex.backend.worker_pids]
    futures = [ex.submit(hold, 10, 1.0) for _ in range(2)]
    started = time.time()
    ex.shutdown(wait=False)
    assert time.time() - started < 1.0
    assert [f.result(timeout=60) for f in futures] == [10, 10]
    until(lambda: all(not psutil.pid_exists(p) or psutil.Process(p).status() == psutil.STATUS_ZOMBIE
                      for p in pids), timeout=30, what="the manager and worker stopping")


EXIT_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_workqueue_calls import hold
from lfm.executors import AutolabelExecutor
ex = AutolabelExecutor(backend="workqueue", predictor="max-seen", resources=("memory",),
                       workers=[{{"cores": 1, "memory": 500, "disk": 500}}])
running = ex.submit(hold, 20, 60)
queued = ex.submit(hold, 20, 60)
print(ex.backend.manager.pid, *ex.backend.worker_pids, ex.backend._staging, flush=True)
while not running.running() and not queued.running():
    pass
# the program ends without shutdown(): the executor is killed at interpreter exit
"""


@pytest.mark.timeout(120)
def test_a_live_executor_at_interpreter_exit_leaves_no_process_behind():
    proc = subprocess.run([sys.executable, "-c", EXIT_SCRIPT.format(tests=TESTS)],
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr
    *pids, staging = proc.stdout.split()
    deadline = time.time() + 30
    alive = [int(p) for p in pids]
    while alive and time.time() < deadline:
        alive = [p for p in alive if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.1)
    assert alive == []
    assert not os.path.exists(staging)
    # nor any task's process (runner, call) in a worker's directory
    left = []
    for p in psutil.process_iter(["cwd"]):
        if (p.info.get("cwd") or "").startswith(staging):
            left.append(p.pid)
    assert left == []


@pytest.mark.timeout(120)
def test_a_call_that_outgrows_its_disk_label_on_a_worker_is_an_exhaustion():
    with AutolabelExecutor(backend="workqueue", predictor=predictor(), workers=[ONE],
                           autolabel=False) as ex:
        label = {"cores": 1, "memory": 500, "disk": 100}
        error = ex.options(resources=label).submit(write_mb, 300).exception(timeout=60)
        assert isinstance(error, ResourceExhaustion), error
        assert "disk" in error.exceeded


@pytest.mark.timeout(180)
def test_cancelling_at_random_moments_never_loses_or_hangs_a_call():
    import concurrent.futures as cf
    import random
    rng = random.Random(7)
    size = {"cores": 2, "memory": 1000, "disk": 1000}
    ex = AutolabelExecutor(backend="workqueue", predictor=predictor(), workers=[size])
    try:
        futures = [ex.submit(hold, 1, rng.choice([0.0, 0.05, 0.3])) for _ in range(60)]
        cancelled = []
        for future in futures:
            time.sleep(rng.choice([0.0, 0.01, 0.1]))
            if rng.random() < 0.4:
                cancelled.append((future, future.cancel()))
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
    done, pending = cf.wait(futures, timeout=60)
    assert not pending
    for future, said in cancelled:
        # cancel() told the truth: True exactly when the future ends cancelled
        assert future.cancelled() == said
    for future in futures:
        assert future.cancelled() or future.result(timeout=1) == 1
    assert any(f.cancelled() for f in futures) and any(not f.cancelled() for f in futures)


@pytest.mark.timeout(120)
def test_calls_after_the_manager_process_died_fail_at_once_instead_of_hanging(tmp_path):
    # the manager is lfm's own subprocess; if it dies (killed, a bug), a call submitted
    # afterwards would sit in a pipe nobody reads: it must resolve, with the reason
    with AutolabelExecutor(backend="workqueue", predictor=predictor(), workers=[ONE]) as ex:
        assert ex.submit(hold, 20).result(timeout=60) == 20
        outstanding = ex.submit(hold, 20, 30.0)
        until(outstanding.running, what="the call's start")
        ex.backend.manager.proc.kill()
        with pytest.raises(WorkQueueTaskError, match="manager process exited while the task was outstanding"):
            outstanding.result(timeout=30)
        until(lambda: ex.backend._gone, timeout=30, what="the backend noticing")
        started = time.time()
        later = [ex.submit(hold, 10) for _ in range(3)]
        for future in later:
            with pytest.raises(WorkQueueTaskError, match="manager process has exited"):
                future.result(timeout=30)
        assert time.time() - started < 10


@pytest.mark.timeout(120)
def test_a_task_the_manager_cannot_build_is_refused_and_the_manager_serves_on():
    # options are checked before they reach the manager (options(extra=...)); should one
    # it cannot take still get there, that task fails, not the manager with every other task
    with AutolabelExecutor(backend="workqueue", predictor=predictor(), workers=[ONE]) as ex:
        put = ex.backend.manager.send

        def corrupt_once(message):
            if message and message[0] == "submit" and not corrupted:
                corrupted.append(message[1])
                message[2]["extra"] = {"priority": "high"}   # what check_extra refuses
            put(message)
        corrupted: list = []
        ex.backend.manager.send = corrupt_once
        with pytest.raises(WorkQueueTaskError, match="Work Queue refused the task: .*high") as refused:
            ex.submit(hold, 20).result(timeout=60)
        assert refused.value.result == "REFUSED" and corrupted
        assert ex.submit(hold, 20).result(timeout=60) == 20
        assert ex.backend.manager.proc.poll() is None


@pytest.mark.timeout(180)
def test_a_local_worker_that_exits_is_started_again_and_one_that_cannot_start_fails_the_calls(caplog):
    # a worker started with workers= may exit (its idle --timeout, the OOM killer, a crash):
    # without a new one, every later call would wait for ever
    with AutolabelExecutor(backend="workqueue", predictor=predictor(), workers=[ONE]) as ex:
        assert ex.submit(hold, 20).result(timeout=60) == 20
        os.killpg(ex.backend.local.procs[0].pid, signal.SIGKILL)
        assert ex.submit(hold, 20).result(timeout=60) == 20
        assert "exited with code -9; starting a new one" in caplog.text

        def cannot_start(size):
            proc = subprocess.Popen(["sh", "-c", "exit 3"], start_new_session=True)
            proc.lfm_workdir = None
            return proc
        ex.backend.local.start_one = cannot_start
        os.killpg(ex.backend.local.procs[0].pid, signal.SIGKILL)
        for future in (ex.submit(hold, 20, 1.0), ex.submit(hold, 20)):
            with pytest.raises(WorkQueueTaskError, match="workers keep exiting right after they start .*code 3"):
                future.result(timeout=60)
        until(lambda: ex.backend._no_workers is not None, what="the give-up")
        with pytest.raises(WorkQueueTaskError, match="no worker is left to run the task"):
            ex.submit(hold, 20).result(timeout=10)
    assert "times in a row: not starting it again" in caplog.text


def test_a_refused_executor_leaves_no_staging_directory_behind(tmp_path):
    # the backend is made before the predictor (which is capped to its largest worker):
    # a bad predictor must not leave the backend's staging directory and password file
    with pytest.raises(ValueError, match="unknown predictor 'nope'"):
        AutolabelExecutor(backend="workqueue", predictor="nope", staging_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []
