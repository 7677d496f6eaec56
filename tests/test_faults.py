"""The fault suite (issue 10): every call resolves, on every backend.

One table of faults a call can commit (:data:`CASES`), each run on the local
backend, on real Work Queue (local ``work_queue_worker`` processes) and, where
it makes sense, through the Parsl executors ``lfm.parsl.AutolabelExecutor``
(local backend) and ``lfm.parsl.WorkQueueExecutor`` (a real DataFlowKernel
whose ``LocalProvider`` starts the worker). Each case states its outcome (a
value, or an exception type and a fragment of its message), and afterwards:

* no process of the call is left (every call notes its pid in a file first,
  and so does any process it starts);
* the executor still runs calls, and the call's capacity was released: calls
  that together need every worker's whole capacity run at the same time.

Then the faults of the executor itself (:func:`test_worker_killed_mid_call`
and below): a worker killed mid-call, Ctrl-C in the program, cancel(),
shutdown(cancel_futures=True), shutdown(wait=False), a live executor at
interpreter exit, hard limits above the largest worker.

Real processes and workers, no mocks. Every test has a timeout, so a
regression fails instead of hanging. Executors are shared per module.
"""
from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import pytest

import fault_calls as calls
from doubling import Doubling
from interrupt import interruptible, kill_and_reap
from lfm import CallAborted, CallExited, CallKilled, ResourceExhaustion
from lfm.executors import AutolabelExecutor, work_queue_available
from lfm.resources import SerializationError

WQ_AVAILABLE, WQ_WHY = work_queue_available()
TESTS = os.path.dirname(os.path.abspath(__file__))

#: the local backend's capacity, and each Work Queue worker's size (two of them)
CAPACITY = {"cores": 2, "memory": 2000, "disk": 2000}
WORKER = {"cores": 1, "memory": 1500, "disk": 3000}
WORKERS = 2


def _predictor():
    return Doubling(resources=("cores", "memory", "disk"), first=400)


# ---- the table -------------------------------------------------------------------------------
@dataclass
class Case:
    """One fault: ``fn(mark, *args)`` with ``declared`` resources must end with
    ``value`` (compared with ==, or checked by ``check``) or raise ``error``
    whose message holds ``words`` (and passes ``check``)."""

    id: str
    fn: Callable[..., Any]
    args: tuple = ()
    value: Any = None
    error: type | tuple | None = None
    words: str = ""
    declared: dict | None = None
    check: Callable[[Any], bool] | None = None
    #: backends this case runs on (Parsl only for calls without declared resources)
    on: tuple = ("local", "workqueue", "parsl-local", "parsl-wq")
    #: seconds the call may take to resolve
    within: float = 60.0


def _is_pattern(mb):
    def check(value):
        return isinstance(value, bytes) and len(value) == mb * calls.MB and value == calls.pattern(mb)
    return check


def _code(code):
    return lambda exc: getattr(exc, "code", None) == code


class _Lock:
    """Stands for an argument that cannot be pickled (a lock): made per run."""


EXECUTORS = ("local", "workqueue")
CASES = [
    Case("returns", calls.returns, (7,), value=7),
    Case("sys.exit(3)", calls.exits, (3,), error=CallExited, words="exits called sys.exit(3)",
         check=_code(3)),
    Case("sys.exit('usage')", calls.exits, ("usage",), error=CallExited,
         words="sys.exit('usage')", check=_code("usage")),
    Case("argparse error", calls.argparse_error, error=CallExited, words="sys.exit(2)",
         check=_code(2)),
    Case("KeyboardInterrupt inside", calls.interrupted, error=CallAborted,
         words="raised KeyboardInterrupt('pressed inside the call')"),
    Case("GeneratorExit", calls.generator_exit, error=CallAborted, words="raised GeneratorExit"),
    Case("os._exit(5)", calls.hard_exit, (5,), error=CallExited, words="exited with status 5",
         check=_code(5)),
    Case("SIGKILL itself", calls.kills_itself, (signal.SIGKILL,), error=CallKilled,
         words="SIGKILL", check=lambda e: e.signal == 9),
    Case("SIGSEGV itself", calls.kills_itself, (signal.SIGSEGV,), error=CallKilled,
         words="SIGSEGV", check=lambda e: e.signal == 11),
    Case("ignores SIGTERM past wall_time", calls.ignores_sigterm, (30,),
         declared={"wall_time": 1.0}, error=ResourceExhaustion, words="wall_time",
         on=EXECUTORS, within=30),
    Case("lambda argument", calls.takes_anything, (lambda: None,), value="ran",
         on=EXECUTORS),  # cloudpickle sends a lambda by value: not a fault
    Case("unpicklable argument", calls.takes_anything, (_Lock,),
         error=SerializationError, words="lock", on=EXECUTORS),
    Case("unpicklable result", calls.unpicklable_result, error=SerializationError,
         words="result"),
    Case("200 MB result", calls.big_result, (200,), check=_is_pattern(200),
         declared={"memory": 1400}, on=EXECUTORS, within=120),
    Case("200 MB result, labels learnt", calls.big_result, (200,), check=_is_pattern(200),
         on=("parsl-local", "parsl-wq"), within=120),
    Case("exception class only the worker has", calls.worker_only_exception,
         error=SerializationError, words="No module named 'worker_only_errors'"),
    Case("exception that cannot be unpickled", calls.unloadable_exception,
         error=SerializationError, words="TwoArgumentError: simulate: pickles but cannot be unpickled",
         check=lambda e: "in unloadable_exception" in str(e.__cause__)),   # its traceback kept
    Case("result that cannot be unpickled", calls.unloadable_result,
         error=SerializationError, words="refuses to be unpickled"),
    Case("1 MB exception message", calls.huge_message, (1,), error=ValueError,
         check=lambda e: len(str(e)) == calls.MB),
    Case("closes stdout and stderr", calls.closes_stdio, value="closed"),
    Case("deletes its own directories", calls.deletes_its_directories, value="gone"),
    Case("double-forked daemon", calls.daemonizes, (120,), value="daemon started"),
    Case("exceeds its memory label", calls.hold, (300,), declared={"memory": 100}, value=300,
         on=EXECUTORS),
    Case("exceeds the largest worker", calls.hold, (2500,), declared={"memory": 1000},
         error=ResourceExhaustion, words="already the largest any worker offers",
         check=lambda e: e.attempts[-1]["label"]["memory"] in (1500, 2000), on=EXECUTORS),
]


# ---- executors -------------------------------------------------------------------------------
class Runner:
    """A backend under test: ``submit(fn, *args, declared=...)`` -> a future.
    ``n_whole`` calls with label ``whole`` need the whole of every worker."""

    def __init__(self, name: str, submit: Callable[..., cf.Future], whole: dict,
                 n_whole: int) -> None:
        self.name = name
        self._submit = submit
        self.whole = whole
        self.n_whole = n_whole

    def submit(self, fn, *args, declared=None):
        return self._submit(fn, args, declared)


def _executor_runner(name: str, ex: AutolabelExecutor, whole: dict, n_whole: int) -> Runner:
    def submit(fn, args, declared):
        return ex.options(resources=declared).submit(fn, *args)
    return Runner(name, submit, whole, n_whole)


@pytest.fixture(scope="module")
def local_runner():
    ex = AutolabelExecutor(predictor=_predictor(), capacity=CAPACITY)
    yield _executor_runner("local", ex, {"cores": 2, "memory": 2000}, 1)
    ex.shutdown(wait=True)


@pytest.fixture(scope="module")
def wq_runner():
    if not WQ_AVAILABLE:
        pytest.skip(f"real Work Queue is not installed: {WQ_WHY}")
    ex = AutolabelExecutor(backend="workqueue", predictor=_predictor(),
                           workers=[WORKER] * WORKERS, verbose=False)
    yield _executor_runner("workqueue", ex, {"cores": 1, "memory": 1500}, WORKERS)
    ex.shutdown(wait=True)


@pytest.fixture(scope="module")
def parsl_runners(tmp_path_factory):
    """One DataFlowKernel with both lfm Parsl executors."""
    parsl = pytest.importorskip("parsl", reason="Parsl is not installed (pip install 'lfm[parsl]')")
    if not WQ_AVAILABLE:
        pytest.skip(f"real Work Queue is not installed: {WQ_WHY}")
    from parsl import Config, python_app
    from parsl.providers import LocalProvider

    from lfm.parsl import AutolabelExecutor as ParslAutolabel
    from lfm.parsl import WorkQueueExecutor

    local = ParslAutolabel(label="lfm-local", predictor=_predictor(), capacity=CAPACITY)
    wq = WorkQueueExecutor(label="lfm-wq", port=0, provider=LocalProvider(
        init_blocks=1, min_blocks=1, max_blocks=1), worker_options="--cores 1 --memory 1500 "
        "--disk 3000", full_debug=False)
    run_dir = tmp_path_factory.mktemp("parsl")
    parsl.load(Config(executors=[local, wq], run_dir=str(run_dir / "runinfo"), strategy_period=0.5))

    def submitter(label):
        apps: dict = {}

        def submit(fn, args, declared):
            assert not declared, "Parsl cases declare no resources"
            app = apps.get(fn)
            if app is None:
                app = apps[fn] = python_app(fn, executors=[label])
            return app(*args)
        return submit

    yield {"parsl-local": Runner("parsl-local", submitter("lfm-local"), {}, 0),
           "parsl-wq": Runner("parsl-wq", submitter("lfm-wq"), {}, 0)}
    parsl.dfk().cleanup()
    parsl.clear()


@pytest.fixture
def runner(request):
    name = request.param
    if name == "local":
        return request.getfixturevalue("local_runner")
    if name == "workqueue":
        return request.getfixturevalue("wq_runner")
    return request.getfixturevalue("parsl_runners")[name]


# ---- checks ----------------------------------------------------------------------------------
def _noted(mark) -> list[tuple[int, str]]:
    try:
        with open(mark) as f:
            return [(int(pid), start) for pid, start in (line.split() for line in f if line.strip())]
    except FileNotFoundError:
        return []


def _alive(pid: int, start: str) -> bool:
    """The process ``pid`` that started at ``start`` (clock ticks) still runs."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return False
    return fields[19].decode() == start and fields[0] not in (b"Z", b"X")


def assert_no_process_left(mark, timeout: float = 15.0) -> None:
    noted = _noted(mark)
    deadline = time.time() + timeout
    while time.time() < deadline and any(_alive(p, s) for p, s in noted):
        time.sleep(0.1)
    left = [p for p, s in noted if _alive(p, s)]
    for pid in left:  # do not leak them into the next case
        os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the call outlived it: {left}"


def assert_capacity_released(runner: Runner, tmp_path) -> None:
    """Calls needing the whole of every worker all run at the same time, so
    nothing of an earlier call holds capacity any more."""
    if not runner.n_whole:  # Parsl: the executor still runs an app
        assert runner.submit(calls.returns, str(tmp_path / "after"), 1).result(timeout=60) == 1
        return
    mark = str(tmp_path / "whole")
    futures = [runner.submit(calls.together, mark, runner.n_whole, declared=runner.whole)
               for _ in range(runner.n_whole)]
    assert [f.result(timeout=90) for f in futures] == [runner.n_whole] * runner.n_whole


#: The cases also run through lfm.parsl.WorkQueueExecutor: one of each kind
#: of outcome (its Parsl layer only chains futures; the backend under it is the
#: Work Queue one every case runs on). Each costs about 3 s there: Work Queue's
#: wait() rounds last a second when nothing is done.
PARSL_WQ_CASES = {"returns", "sys.exit(3)", "KeyboardInterrupt inside", "os._exit(5)",
                  "SIGKILL itself", "exception class only the worker has", "unpicklable result",
                  "200 MB result, labels learnt", "double-forked daemon"}


def _params():
    out = []
    for case in CASES:
        for backend in case.on:
            if backend == "parsl-wq" and case.id not in PARSL_WQ_CASES:
                continue
            marks = [pytest.mark.timeout(case.within + 120)]
            if backend != "local":
                marks.append(pytest.mark.workqueue)
            out.append(pytest.param(backend, case, id=f"{backend}-{case.id}", marks=marks))
    return out


@pytest.mark.parametrize("runner, case", _params(), indirect=["runner"])
def test_fault_resolves_releases_and_leaves_nothing(runner, case, tmp_path):
    mark = str(tmp_path / "pids")
    args = case.args
    if args == (_Lock,):
        import threading
        args = (threading.Lock(),)
    started = time.monotonic()
    try:
        value = runner.submit(case.fn, mark, *args, declared=case.declared).result(
            timeout=case.within)
        error = None
    except cf.TimeoutError:
        pytest.fail(f"{case.id} on {runner.name}: not resolved within {case.within} s")
    except BaseException as exc:  # noqa: BLE001 - whatever it is, it is the outcome
        error = exc
    if case.error is not None:
        assert error is not None, f"expected {case.error}, got the value {value!r:.200}"
        assert isinstance(error, case.error), f"{type(error).__name__}: {str(error)[:500]}"
        assert case.words in str(error), str(error)[:500]
        if case.check is not None:
            assert case.check(error), repr(error)[:500]
    else:
        assert error is None, f"{type(error).__name__}: {str(error)[:800]}"
        assert case.check(value) if case.check is not None else value == case.value
    assert time.monotonic() - started < case.within
    assert_no_process_left(mark)
    assert_capacity_released(runner, tmp_path)


# ---- faults of the executor itself -----------------------------------------------------------
def _fresh(backend: str, workers: int = WORKERS, **options) -> AutolabelExecutor:
    if backend == "workqueue":
        if not WQ_AVAILABLE:
            pytest.skip(f"real Work Queue is not installed: {WQ_WHY}")
        return AutolabelExecutor(backend="workqueue", predictor=_predictor(),
                                 workers=[WORKER] * workers, verbose=False, **options)
    return AutolabelExecutor(predictor=_predictor(), capacity=CAPACITY, **options)


#: a label that takes the whole of one worker (local: the whole capacity)
WHOLE = {"local": {"cores": 2, "memory": 2000}, "workqueue": {"cores": 1, "memory": 1500}}
BOTH = [pytest.param("local"), pytest.param("workqueue", marks=pytest.mark.workqueue)]


def _wait_running(futures, timeout=60.0):
    deadline = time.time() + timeout
    while not all(f.running() or f.done() for f in futures) and time.time() < deadline:
        time.sleep(0.05)
    assert all(f.running() for f in futures), [f._state for f in futures]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BOTH)
def test_hard_limits_above_the_largest_worker_fail_at_once(backend, tmp_path):
    with _fresh(backend, workers=1, autolabel=False) as ex:
        started = time.monotonic()
        future = ex.options(resources={"memory": 99999, "cores": 1}).submit(
            calls.returns, str(tmp_path / "pids"), 1)
        error = future.exception(timeout=10)
        assert time.monotonic() - started < 5
        assert isinstance(error, ResourceExhaustion) and error.attempts == []
        largest = ex.backend.max_resources()["memory"]
        assert "memory 99999 MB as hard limits" in str(error)
        assert f"memory {largest:g} MB" in str(error), str(error)
        assert not os.path.exists(tmp_path / "pids")  # it never ran
        assert ex.submit(calls.returns, str(tmp_path / "pids"), 2).result(timeout=60) == 2


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BOTH)
def test_cancel_of_a_queued_call(backend, tmp_path, request):
    runner = request.getfixturevalue("local_runner" if backend == "local" else "wq_runner")
    release = str(tmp_path / "release")  # the blockers run until it exists
    blockers = [runner.submit(calls.wait_for, str(tmp_path / "blockers"), release,
                              declared=runner.whole) for _ in range(runner.n_whole)]
    threads: dict = {}

    def record(future):
        threads[id(future)] = threading.current_thread().name
    for f in blockers:
        f.add_done_callback(record)
    _wait_running(blockers)
    queued = runner.submit(calls.returns, str(tmp_path / "queued"), 1, declared=runner.whole)
    queued.add_done_callback(record)
    time.sleep(0.3)
    assert not queued.running()
    assert queued.cancel() is True and queued.cancelled()
    with pytest.raises(cf.CancelledError):
        queued.result(timeout=1)
    open(release, "w").close()
    assert [f.result(timeout=60) for f in blockers] == [True] * runner.n_whole
    # done-callbacks run in the thread that resolved the future: cancel()'s
    # caller, or the backend's thread that ran the attempt / read its result
    deadline = time.time() + 10
    while len(threads) < len(blockers) + 1 and time.time() < deadline:
        time.sleep(0.05)
    assert threads[id(queued)] == threading.current_thread().name
    backend_thread = "lfm-local-task" if backend == "local" else "lfm-wq-reader"
    assert all(threads[id(f)].startswith(backend_thread) for f in blockers), threads
    assert_capacity_released(runner, tmp_path)
    assert not os.path.exists(tmp_path / "queued")  # the cancelled call never ran
    # a running call cannot be cancelled
    running = runner.submit(calls.hold, str(tmp_path / "running"), 10, 1.0)
    _wait_running([running])
    assert running.cancel() is False and running.result(timeout=60) == 10
    assert_no_process_left(str(tmp_path / "blockers"))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("backend", BOTH)
def test_shutdown_cancel_futures_and_wait_false(backend, tmp_path):
    n = 1 if backend == "local" else WORKERS
    whole = WHOLE[backend]
    # cancel_futures=True: running calls finish, every queued one is cancelled
    ex = _fresh(backend)
    release = str(tmp_path / "release")
    blockers = [ex.options(resources=whole).submit(calls.wait_for, str(tmp_path / "b"), release)
                for _ in range(n)]
    _wait_running(blockers)
    queued = [ex.options(resources=whole).submit(calls.returns, str(tmp_path / "q"), i)
              for i in range(4)]
    threading.Timer(1.0, lambda: open(release, "w").close()).start()
    ex.shutdown(wait=True, cancel_futures=True)
    assert [f.result(timeout=1) for f in blockers] == [True] * n
    assert all(f.cancelled() for f in queued)
    assert not os.path.exists(tmp_path / "q")
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(calls.returns, str(tmp_path / "late"), 1)
    assert_no_process_left(str(tmp_path / "b"))
    _assert_backend_gone(ex)

    # wait=False: returns at once; running and queued calls still finish
    ex = _fresh(backend)
    futures = [ex.options(resources=whole).submit(calls.hold, str(tmp_path / "w"), 10, 1.0)
               for _ in range(n + 2)]
    started = time.monotonic()
    ex.shutdown(wait=False)
    assert time.monotonic() - started < 1.0
    assert [f.result(timeout=90) for f in futures] == [10] * (n + 2)
    assert_no_process_left(str(tmp_path / "w"))
    _assert_backend_gone(ex, timeout=30)


def _assert_backend_gone(ex: AutolabelExecutor, timeout: float = 15.0) -> None:
    """The backend's manager and workers exited and its staging directory is gone."""
    backend = ex.backend
    pids = list(getattr(backend, "worker_pids", []))
    manager = getattr(backend, "manager", None)
    if manager is not None:
        pids.append(manager.pid)
    deadline = time.time() + timeout
    while time.time() < deadline and any(_running(p) for p in pids):
        time.sleep(0.1)
    assert not [p for p in pids if _running(p)]
    staging = getattr(backend, "_staging", None)
    while staging and os.path.exists(staging) and time.time() < deadline:
        time.sleep(0.1)
    assert not staging or not os.path.exists(staging)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


@pytest.mark.timeout(120)
@pytest.mark.workqueue
def test_worker_killed_mid_call_runs_it_elsewhere(tmp_path):
    """Work Queue: the machine of a worker is gone with the call it ran; the
    call runs again on the other worker and returns."""
    from lfm.executors.wqlocal import kill_processes_under
    with _fresh("workqueue") as ex:
        mark = str(tmp_path / "pids")
        future = ex.submit(calls.hold, mark, 10, 3.0)
        deadline = time.time() + 60
        while not os.path.exists(mark) and time.time() < deadline:
            time.sleep(0.05)
        (pid, _), = _noted(mark)
        victim = next(w for w in ex.backend.local.procs
                      if str(pid) in _pids_under(w.lfm_workdir))
        os.killpg(victim.pid, signal.SIGKILL)       # the worker's machine is gone ...
        kill_processes_under(victim.lfm_workdir)    # ... with the call it was running
        assert future.result(timeout=90) == 10
        assert len(_noted(mark)) == 2  # it ran twice, the second time elsewhere
        assert_no_process_left(mark)


def _pids_under(directory: str) -> set[str]:
    import psutil
    found = set()
    for p in psutil.process_iter(["cwd"]):
        if (p.info.get("cwd") or "").startswith(directory):
            found.add(str(p.pid))
    return found


@pytest.mark.timeout(60)
def test_call_killed_from_outside_is_call_killed(local_runner, tmp_path):
    """Local: someone else SIGKILLs the call's process (no OOM kill counted)."""
    mark = str(tmp_path / "pids")
    future = local_runner.submit(calls.hold, mark, 10, 30.0)
    deadline = time.time() + 30
    while not _noted(mark) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(_noted(mark)[0][0], signal.SIGKILL)
    error = future.exception(timeout=30)
    assert isinstance(error, CallKilled) and error.signal == 9, repr(error)
    assert_capacity_released(local_runner, tmp_path)


# ---- the program around the executor ---------------------------------------------------------
PROGRAM = """
import os, sys, time
sys.path.insert(0, {tests!r})
import fault_calls as calls
from lfm.executors import AutolabelExecutor
options = {options}
ex = AutolabelExecutor(predictor="max-seen", resources=("memory",), **options)
backend = ex.backend
pids = [getattr(getattr(backend, "manager", None), "pid", None), *getattr(backend, "worker_pids", [])]
print("backend", *[p for p in pids if p], getattr(backend, "_staging", "-"), flush=True)
futures = [ex.submit(calls.hold, {mark!r}, 10, 60) for _ in range(3)]
def said(f, i):
    # one write of the whole line: callbacks run in several threads, and print()
    # writes its words and the newline separately, so two lines could interleave
    kind = "cancelled" if f.cancelled() else type(f.exception()).__name__
    sys.stdout.write(f"resolved {{i}} {{kind}}\\n")
    sys.stdout.flush()
for i, f in enumerate(futures):
    f.add_done_callback(lambda f, i=i: said(f, i))
while not os.path.exists({mark!r}):
    time.sleep(0.05)
print("running", flush=True)
{ending}
"""
ENDINGS = {
    # Ctrl-C while the program waits for a result inside the with block
    "ctrl-c": "with ex:\n    futures[0].result()",
    # the program ends with the executor still running its calls
    "exit": "print('leaving', flush=True)",
    # ... after shutdown(wait=False), which returned at once
    "exit after shutdown(wait=False)": "ex.shutdown(wait=False)\nprint('leaving', flush=True)",
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("ending", sorted(ENDINGS))
@pytest.mark.parametrize("backend", BOTH)
def test_program_interrupted_or_exiting_leaves_nothing(backend, ending, tmp_path):
    import subprocess
    import sys
    if backend == "workqueue" and not WQ_AVAILABLE:
        pytest.skip(f"real Work Queue is not installed: {WQ_WHY}")
    options = ({"backend": "workqueue", "workers": [WORKER], "verbose": False}
               if backend == "workqueue" else {"capacity": CAPACITY})
    mark = str(tmp_path / "pids")
    source = PROGRAM.format(tests=TESTS, options=options, mark=mark, ending=ENDINGS[ending])
    proc = subprocess.Popen([sys.executable, "-c", interruptible(source)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        first = proc.stdout.readline().split()
        assert first[:1] == ["backend"], (first, proc.stderr.read() if proc.poll() else "")
        *pids, staging = first[1:]
        assert proc.stdout.readline().strip() == "running"
        if ending == "ctrl-c":
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
        status = proc.wait(timeout=60)
        out, err = proc.communicate(timeout=10)
    finally:
        kill_and_reap(proc, group=True)
    resolved = [line for line in out.splitlines() if line.startswith("resolved")]
    if ending == "ctrl-c":
        assert status != 0 and "KeyboardInterrupt" in err, err[-2000:]
        # kill() resolved every future before the program ended: running
        # calls killed, queued ones cancelled
        assert len(resolved) == 3, out
        assert {line.split()[-1] for line in resolved} <= {"CallKilled", "cancelled"}, out
    else:
        assert status == 0, err[-2000:]
    for pid in pids:
        deadline = time.time() + 15
        while _running(int(pid)) and time.time() < deadline:
            time.sleep(0.1)
        assert not _running(int(pid)), f"process {pid} of the backend outlived the program"
    assert_no_process_left(mark)
    if staging != "-":
        assert not os.path.exists(staging), (os.listdir(staging), err[-3000:])


@pytest.mark.timeout(120)
def test_a_call_waiting_for_its_retry_is_running_and_ends_cancelled_at_shutdown(tmp_path):
    """Between two attempts a call has started: cancel() returns False, and
    shutdown(cancel_futures=True) ends it with CancelledError (cancelled()
    stays False), as the executor's docstring says."""
    ex = _fresh("local")
    release = str(tmp_path / "release")
    blocker = ex.options(resources={"memory": 1900}).submit(calls.wait_for, str(tmp_path / "b"),
                                                            release)
    _wait_running([blocker])
    # 100 MB fits beside the blocker; its retry (200 MB) must wait for it
    grows = ex.options(resources={"memory": 100}).submit(calls.hold, str(tmp_path / "g"), 300)
    deadline = time.time() + 30
    while not _exhausted(ex, "hold"):
        assert time.time() < deadline, "the first attempt never exhausted its label"
        time.sleep(0.05)
    assert grows.running() and not blocker.done()
    assert grows.cancel() is False
    threading.Timer(1.0, lambda: open(release, "w").close()).start()
    ex.shutdown(wait=True, cancel_futures=True)
    assert blocker.result(timeout=1) is True
    assert isinstance(grows.exception(timeout=1), cf.CancelledError) and not grows.cancelled()
    assert len(_noted(str(tmp_path / "g"))) == 1  # the retry never ran


def _exhausted(ex: AutolabelExecutor, category: str) -> int:
    """Attempts of ``category`` that exhausted their label so far."""
    stats = ex.stats()
    return int(stats.loc[category, "exhausted"]) if category in stats.index else 0


@pytest.mark.workqueue
@pytest.mark.timeout(120)
def test_a_guess_no_connected_worker_fits_fails_with_its_attempts(tmp_path):
    """Work Queue without ``workers=``: a first guess made before any worker
    connected (nothing caps it) and above the worker that then connects fails
    after fit_timeout with ResourceExhaustion, its ``attempts`` the history
    (the executor's docstring), and the executor goes on."""
    if not WQ_AVAILABLE:
        pytest.skip(f"real Work Queue is not installed: {WQ_WHY}")
    from test_workqueue_trust import remote_options, start_worker, stop_worker
    with AutolabelExecutor(backend="workqueue", predictor=_predictor(),
                           **remote_options(fit_timeout=1.0)) as ex:
        too_big = ex.options(resources={"memory": 5000, "disk": 100}).submit(
            calls.returns, str(tmp_path / "big"), 1)
        worker = start_worker(ex.backend, {"cores": 1, "memory": 700, "disk": 1000}, tmp_path)
        try:
            error = too_big.exception(timeout=60)
            assert isinstance(error, ResourceExhaustion), repr(error)
            assert "memory 700" in str(error) and "fit_timeout=1 s" in str(error)
            assert [a["label"]["memory"] for a in error.attempts] == [5000.0]
            assert not os.path.exists(tmp_path / "big")
            assert ex.options(resources={"memory": 300, "disk": 100}).submit(
                calls.returns, str(tmp_path / "fits"), 2).result(timeout=60) == 2
        finally:
            stop_worker(worker)
