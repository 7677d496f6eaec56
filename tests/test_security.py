"""Issue 14: every lfm Work Queue manager requires a password, with real
``work_queue_worker`` processes (intruders without it, with a wrong one, and
authenticated ones); the manager's defences when reading a worker's outcome."""
from __future__ import annotations

import logging
import os
import shlex
import stat
import subprocess
import sys
import time

import pytest

from lfm.executors import AutolabelExecutor, work_queue_available
from lfm.executors import wqauth
from lfm.executors.runner import read_outcome
from doubling import Doubling
from test_workqueue_calls import hold, touch

AVAILABLE, WHY = work_queue_available()


def needs_wq(test):
    """Marks a test that runs real Work Queue (skipped without it, failed in CI)."""
    skip = pytest.mark.skipif(not AVAILABLE, reason=f"real Work Queue is not installed: {WHY}")
    return pytest.mark.workqueue(skip(test))

SIZE = {"cores": 1, "memory": 600, "disk": 1000}
TESTS = os.path.dirname(os.path.abspath(__file__))


def predictor():
    return Doubling(resources=("cores", "memory", "disk"), first=100)


def remote_executor(tmp_path, **options):
    """An executor waiting for workers started by hand (as on other machines)."""
    return AutolabelExecutor(backend="workqueue", predictor=predictor(), max_resources=SIZE,
                             python=sys.executable, env={"PYTHONPATH": TESTS}, verbose=False,
                             debug_log=str(tmp_path / "manager.log"), **options)


def start_worker(argv, log):
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def kill(proc):
    """For a refused worker: it sleeps through SIGTERM while it backs off."""
    proc.kill()
    proc.wait(timeout=20)


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def sandboxes(workdir):
    """Files of tasks a worker received (it stages each task's in.pkl)."""
    return [os.path.join(d, f) for d, _, files in os.walk(workdir) for f in files if f == "in.pkl"]


# ---- password files, argv (no manager needed) ------------------------------------------
def test_generated_password_file_is_random_0600_and_removed(tmp_path):
    old = os.umask(0)  # even a permissive umask gives 0600
    try:
        first = wqauth.new_password_file(str(tmp_path))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(first.path).st_mode) == 0o600 and first.owned
    other = tmp_path / "other"
    other.mkdir()
    second = wqauth.new_password_file(str(other))
    secret = open(first.path).read().strip()
    assert len(secret) == 2 * wqauth.PASSWORD_BYTES and secret != open(second.path).read().strip()
    with pytest.raises(FileExistsError):
        wqauth.new_password_file(str(tmp_path))  # never reuses (or follows) an existing file
    first.remove()
    first.remove()
    assert not os.path.exists(first.path)


def test_user_password_file_is_checked_and_kept(tmp_path, caplog):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        wqauth.manager_password(True, tmp_path / "missing", str(tmp_path))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        wqauth.manager_password(True, empty, str(tmp_path))
    with pytest.raises(ValueError, match="not a regular file"):
        wqauth.manager_password(True, tmp_path, str(tmp_path))
    mine = tmp_path / "pw"
    mine.write_text("s3cret\n")
    with pytest.raises(ValueError, match="contradicts"):
        wqauth.manager_password(False, mine, str(tmp_path))
    with pytest.raises(TypeError, match="True or False"):
        wqauth.manager_password("s3cret", None, str(tmp_path))
    os.chmod(mine, 0o644)
    with caplog.at_level(logging.WARNING, logger="lfm.executors.workqueue"):
        supplied = wqauth.manager_password(True, mine, str(tmp_path))
    assert "mode 644" in caplog.text and not supplied.owned
    supplied.remove()
    assert mine.read_text() == "s3cret\n"
    assert wqauth.manager_password(False, None, str(tmp_path)) is None


def test_worker_argv_carries_size_workdir_options_and_password():
    argv = wqauth.worker_argv(["node1", "9123"], {"cores": 2, "memory": 1500.0}, workdir="/scratch/w",
                              options=["--timeout=60"], password_file="/home/u/pw")
    assert argv == ["work_queue_worker", "--cores=2", "--memory=1500", "--workdir", "/scratch/w",
                    "--timeout=60", "--password", "/home/u/pw", "node1", "9123"]
    assert wqauth.worker_argv(["-M", "proj"]) == ["work_queue_worker", "-M", "proj"]
    with pytest.raises(TypeError, match="list of worker flags"):
        wqauth.worker_argv(["h", "1"], options="--timeout=60")


# ---- real Work Queue ---------------------------------------------------------------------
@pytest.mark.timeout(120)
@needs_wq
def test_local_workers_get_the_password_which_is_0600_and_gone_after_shutdown():
    ex = AutolabelExecutor(backend="workqueue", predictor=predictor(), workers=[SIZE])
    backend = ex.backend
    try:
        path = backend.password_file
        assert path and os.path.dirname(path) == backend._staging
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert [ex.submit(hold, 5).result(timeout=60) for _ in range(3)] == [5, 5, 5]
        argv = backend.worker_argv(SIZE, workdir="/tmp/w", options=["--single-shot"])
        assert argv[argv.index("--password") + 1] == path and argv[-1] == str(backend.port)
        assert backend.worker_command() == shlex.join(backend.worker_argv())
    finally:
        ex.shutdown()
    assert not os.path.exists(path) and not os.path.exists(backend._staging)


@pytest.mark.timeout(180)
@needs_wq
def test_workers_without_or_with_a_wrong_password_are_refused_and_run_nothing(tmp_path):
    wrong = user_secret(tmp_path / "wrong.password", "not the manager's password\n")
    intruders, logs = [], {}
    with remote_executor(tmp_path) as ex:
        backend = ex.backend
        address = ["localhost", str(backend.port)]
        for name, extra in (("nopassword", []), ("wrongpassword", ["--password", str(wrong)])):
            workdir = tmp_path / name
            workdir.mkdir()
            logs[name] = tmp_path / f"{name}.log"
            with open(logs[name], "wb") as log:
                intruders.append(start_worker(
                    ["work_queue_worker", *SIZE_FLAGS, "--workdir", str(workdir), *extra, *address], log))
        try:
            futures = [ex.submit(hold, 5, 0.1) for _ in range(4)]
            wait_for(lambda: "requires a password" in text(logs["nopassword"])
                     and "wrong password" in text(logs["wrongpassword"]), 60, "both refusals")
            # refused more than once each (they keep retrying), and nothing ran meanwhile
            wait_for(lambda: text(tmp_path / "manager.log").count("presented the wrong password") >= 3,
                     60, "the manager refusing the retries")
            assert not any(f.done() for f in futures)
            assert all(p.poll() is None for p in intruders)  # connected, kept out, still trying
            good_dir = tmp_path / "good"
            good_dir.mkdir()
            with open(tmp_path / "good.log", "wb") as log:
                good = start_worker(backend.worker_argv(SIZE, workdir=str(good_dir)), log)
            try:
                assert [f.result(timeout=90) for f in futures] == [5] * 4
            finally:
                stop(good)
            for name in logs:
                assert sandboxes(tmp_path / name) == [], f"the {name} worker received a task"
        finally:
            for proc in intruders:
                kill(proc)
    assert "presented the wrong password" in text(tmp_path / "manager.log")


SIZE_FLAGS = [f"--{r}={v}" for r, v in SIZE.items()]


@pytest.mark.timeout(120)
@needs_wq
def test_a_worker_with_the_password_refuses_a_manager_without_it(tmp_path):
    """The other direction: a worker started for lfm never runs an impostor
    manager's tasks (here an open one, found by a port scan or the catalog)."""
    secret = wqauth.new_password_file(str(tmp_path))
    marker = tmp_path / "ran"
    workdir = tmp_path / "worker"
    workdir.mkdir()
    with remote_executor(tmp_path, password=False) as impostor:
        future = impostor.submit(touch, str(marker))
        argv = wqauth.worker_argv(["localhost", str(impostor.backend.port)], SIZE,
                                  workdir=str(workdir), password_file=secret.path)
        with open(tmp_path / "worker.log", "wb") as log:
            worker = start_worker(argv, log)
        try:
            wait_for(lambda: text(tmp_path / "manager.log").count("attempting to use a password") >= 2,
                     60, "the worker refusing the manager twice")
            assert "wrong password" in text(tmp_path / "worker.log")
            assert not future.done() and not marker.exists() and sandboxes(workdir) == []
        finally:
            stop(worker)
            future.cancel()


@pytest.mark.timeout(120)
@needs_wq
def test_user_supplied_password_file_is_used_and_kept(tmp_path):
    mine = user_secret(tmp_path / "project.password", "shared between my sites\n")
    with remote_executor(tmp_path, password_file=str(mine)) as ex:
        assert ex.backend.password_file == str(mine)
        with open(tmp_path / "worker.log", "wb") as log:
            # a worker elsewhere holding its own copy of the file
            copy = tmp_path / "copy"
            copy.write_bytes(mine.read_bytes())
            argv = ex.backend.worker_argv(SIZE, workdir=str(tmp_path))
            argv[argv.index("--password") + 1] = str(copy)
            worker = start_worker(argv, log)
        try:
            assert ex.submit(hold, 5).result(timeout=60) == 5
        finally:
            stop(worker)
    assert mine.read_text() == "shared between my sites\n"


@pytest.mark.timeout(120)
@needs_wq
def test_password_false_opens_the_manager_and_warns_once(caplog):
    with caplog.at_level(logging.WARNING, logger="lfm.executors.workqueue"):
        with AutolabelExecutor(backend="workqueue", predictor=predictor(), workers=[SIZE],
                               password=False) as ex:
            assert ex.backend.password_file is None
            assert "--password" not in ex.backend.worker_argv()
            assert [ex.submit(hold, 5).result(timeout=60) for _ in range(2)] == [5, 5]
    warnings = [r for r in caplog.records if "WITHOUT a password" in r.getMessage()]
    assert len(warnings) == 1
    assert "arbitrary code" in warnings[0].getMessage()
    assert str(ex.backend.port) in warnings[0].getMessage()


@pytest.mark.timeout(60)
@needs_wq
def test_printed_command_has_the_password_and_how_to_copy_it(tmp_path, capfd):
    with AutolabelExecutor(backend="workqueue", predictor=predictor(), max_resources=SIZE) as ex:
        printed = capfd.readouterr().err
        path = ex.backend.password_file
        assert ex.backend.worker_command() in printed
        assert f"--password {path}" in printed and "scp -p" in printed
    unstarted = type(ex.backend)(port=0, max_resources=SIZE)
    try:
        with pytest.raises(RuntimeError, match="port"):
            unstarted.worker_argv()
    finally:
        unstarted.shutdown()


# ---- the manager reading outcomes: checks before anything is unpickled -------------------
class Trap:
    """Unpickling it creates a directory: proof that a pickle was loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def crafted(tmp_path, monkeypatch, *, token="T", record=None, value=None):
    """An outcome file as an attacker would write it, in lfm's framing, whose
    pickled part runs code (makes a directory) when loaded."""
    import pickle
    monkeypatch.setenv(wqauth.TOKEN_ENV, token)
    marker = str(tmp_path / "unpickled")
    record = record or {"status": "ok", "host": os.uname().nodename, "resources": {}}
    body = {"value": Trap(marker) if value is None else value, "error": None}
    chunks = wqauth.pack_outcome({**record, **body}, pickle.dumps)
    path = tmp_path / "out.pkl"
    path.write_bytes(b"".join(chunks))
    return str(path), marker


def test_outcome_of_another_task_is_refused_unread(tmp_path, monkeypatch):
    path, marker = crafted(tmp_path, monkeypatch, token="not-this-task")
    with pytest.raises(wqauth.RefusedOutcome, match="not the output of the task"):
        read_outcome(path, token="T", host=os.uname().nodename)
    assert not os.path.exists(marker)
    read_outcome(path, token="not-this-task")  # the same file, its own task's token: loaded
    assert os.path.isdir(marker)


def test_outcome_from_another_host_is_refused_unread(tmp_path, monkeypatch):
    path, marker = crafted(tmp_path, monkeypatch, record={"status": "ok", "host": "elsewhere"})
    with pytest.raises(wqauth.RefusedOutcome, match="ran on 'elsewhere'"):
        read_outcome(path, token="T", host="node7.example.org")
    assert not os.path.exists(marker)
    assert wqauth.same_host("node7.example.org", "node7") and not wqauth.same_host("node7", "node8")


def test_outcome_larger_than_the_limit_is_refused_unread(tmp_path, monkeypatch):
    path, marker = crafted(tmp_path, monkeypatch, record={"status": "ok", "host": "h",
                                                         "traceback": "x" * 300_000})
    with pytest.raises(wqauth.RefusedOutcome, match="over the limit of .*max_output_mb"):
        read_outcome(path, token="T", max_bytes=100_000)
    assert not os.path.exists(marker)
    MB = 2 ** 20
    assert wqauth.output_limit_bytes(None, {"memory": 1000}) == 2256 * MB
    assert wqauth.output_limit_bytes(None, {"cores": 1}, largest_memory=500) == 1256 * MB
    assert wqauth.output_limit_bytes(None, {}) == 8192 * MB
    assert wqauth.output_limit_bytes(10, {"memory": 1000}) == 10 * MB
    assert wqauth.output_limit_bytes(float("inf"), {"memory": 1000}) is None
    with pytest.raises(ValueError, match="positive number \\(MB\\) \\(inf for no limit\\)"):
        wqauth.check_max_output_mb(0)


@pytest.mark.parametrize("envelope, words", [
    (b"{'status': 'pwned', 'host': 'h'}", "status 'pwned'"),
    (b"{'status': 'ok', 'resources': {'memory': 'a lot'}}", "resources is not a mapping"),
    (b"{'status': 'ok', 'extra': 1}", "unknown keys 'extra'"),
    (b"{'status': 'ok', 'host': __import__('os').mkdir('X')}", "not a plain literal"),
    (b"{'status': 'ok', 'imports': {'numpy': 3}}", "imports are not"),
    (b"['ok']", "not a dict"),
])
def test_malformed_envelope_is_refused_before_the_pickle(tmp_path, envelope, words):
    import pickle
    marker = str(tmp_path / "unpickled")
    body = pickle.dumps({"value": Trap(marker), "error": None})
    path = tmp_path / "out.pkl"
    path.write_bytes(b"LFM-OUTCOME 1 T %d\n" % len(envelope) + envelope + body)
    with pytest.raises(wqauth.RefusedOutcome, match=words):
        read_outcome(str(path), token="T")
    assert not os.path.exists(marker) and not os.path.exists("X")


def test_a_bare_pickle_is_not_an_outcome(tmp_path):
    import pickle
    marker = str(tmp_path / "unpickled")
    path = tmp_path / "out.pkl"
    path.write_bytes(pickle.dumps({"status": "ok", "value": Trap(marker)}))
    with pytest.raises(wqauth.RefusedOutcome, match="not an lfm outcome file"):
        read_outcome(str(path))
    assert not os.path.exists(marker)


def test_pickled_part_is_checked_after_loading(tmp_path, monkeypatch):
    path, _ = crafted(tmp_path, monkeypatch, value="fine", record={"status": "error", "host": "h"})
    with pytest.raises(wqauth.RefusedOutcome, match="status 'error' with error None"):
        read_outcome(path, token="T")
    # non-finite numbers survive the envelope (the monitor drops NaN itself)
    record = {"status": "ok", "host": "h",
              "resources": {"memory": float("nan"), "cores": 1.5, "wall_time": float("inf")},
              "exceeded": {"memory": -float("inf")}}
    path, _ = crafted(tmp_path, monkeypatch, value=[1, 2], record=record)
    outcome = read_outcome(path, token="T", host="h")
    assert outcome.value == [1, 2] and outcome.exceeded == {"memory": -float("inf")}
    assert dict(outcome.resources) == {"cores": 1.5, "wall_time": float("inf")}


@pytest.mark.timeout(120)
@needs_wq
def test_an_output_over_max_output_mb_is_refused_and_smaller_ones_arrive():
    from lfm.executors import WorkQueueTaskError
    from test_workqueue_calls import payload
    with AutolabelExecutor(backend="workqueue", predictor=predictor(), workers=[SIZE],
                           max_output_mb=2) as ex:
        assert len(ex.submit(payload, 1).result(timeout=60)) == 2 ** 20
        error = ex.submit(payload, 3).exception(timeout=60)
    assert isinstance(error, WorkQueueTaskError) and "over the limit of 2 MB" in str(error)


# ---- lfm.parsl.WorkQueueExecutor: provider blocks and the password -----------------------
def parsl_run(tmp_path, **options):
    """A DataFlowKernel with one lfm.parsl.WorkQueueExecutor (port 0, one
    LocalProvider block unless ``provider`` is given), as a context manager."""
    pytest.importorskip("parsl", reason="Parsl is not installed")
    from parsl.providers import LocalProvider

    from lfm.parsl import WorkQueueExecutor
    from parsl_helpers import ParslSession
    options.setdefault("provider", LocalProvider(init_blocks=1, max_blocks=1))
    return ParslSession(tmp_path, WorkQueueExecutor(label="secure", port=0, **options))


def user_secret(path, content):
    """A password file of the user's: ``content``, mode 0600."""
    path.write_text(content)
    path.chmod(0o600)
    return path


def block_workers(executor):
    """The command lines of the work_queue_worker processes of the executor's blocks."""
    import psutil
    from parsl_helpers import wait_until, worker_pids
    port = str(executor.manager_port)
    assert wait_until(lambda: worker_pids(port), 30), "no block's worker started"
    return [psutil.Process(pid).cmdline() for pid in worker_pids(port)]


def after(argv, flag):
    return argv[argv.index(flag) + 1] if flag in argv else None


@pytest.mark.timeout(120)
@needs_wq
def test_parsl_blocks_authenticate_with_the_generated_password(tmp_path):
    with parsl_run(tmp_path) as ex:
        from test_parsl_wq import square
        assert square(6).result(timeout=60) == 36
        path = ex.lfm_executor.backend.password_file
        assert path and stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert f"--password {path} " in ex.worker_command
        assert [after(argv, "--password") for argv in block_workers(ex)] == [path]
    assert not os.path.exists(path)


@pytest.mark.timeout(120)
@needs_wq
def test_parsl_project_password_file_is_used_as_is_and_kept(tmp_path):
    mine = user_secret(tmp_path / "project.password", "my project's password\n")
    with parsl_run(tmp_path, project_password_file=str(mine)) as ex:
        from test_parsl_wq import square
        assert square(7).result(timeout=60) == 49
        assert ex.lfm_executor.backend.password_file == str(mine)
        assert [after(argv, "--password") for argv in block_workers(ex)] == [str(mine)]
    assert mine.read_text() == "my project's password\n"
    assert stat.S_IMODE(os.stat(mine).st_mode) == 0o600


@pytest.mark.timeout(120)
@needs_wq
def test_parsl_open_manager_warns_and_max_output_mb_refuses_large_results(tmp_path, caplog):
    from lfm.executors import WorkQueueTaskError
    from test_workqueue_calls import payload
    with caplog.at_level(logging.WARNING, logger="lfm.executors.workqueue"):
        with parsl_run(tmp_path, password=False, max_output_mb=2) as ex:
            app = pytest.importorskip("parsl").python_app(payload)
            assert len(app(1).result(timeout=60)) == 2 ** 20
            error = app(3).exception(timeout=60)
            assert ex.lfm_executor.backend.password_file is None
            assert all("--password" not in argv for argv in block_workers(ex))
    assert isinstance(error, WorkQueueTaskError) and "over the limit of 2 MB" in str(error)
    warnings = [r for r in caplog.records if "WITHOUT a password" in r.getMessage()]
    assert len(warnings) == 1


@needs_wq
def test_parsl_password_options_are_checked_at_construction(tmp_path):
    pytest.importorskip("parsl", reason="Parsl is not installed")
    from lfm.parsl import WorkQueueExecutor
    mine = tmp_path / "pw"
    mine.write_text("x\n")
    with pytest.raises(ValueError, match="password=False contradicts project_password_file="):
        WorkQueueExecutor(password=False, project_password_file=str(mine))
    with pytest.raises(TypeError, match="password must be True or False"):
        WorkQueueExecutor(password="x")
    with pytest.raises(ValueError, match="max_output_mb must be a positive number"):
        WorkQueueExecutor(max_output_mb=-1)


@pytest.mark.timeout(60)
@needs_wq
def test_condor_blocks_are_given_the_password_file_to_transfer(tmp_path):
    """Without a Condor pool: what lfm gives CondorProvider (its transfer list
    and the worker command) for the generated password and for the user's."""
    pytest.importorskip("parsl", reason="Parsl is not installed")
    from parsl.providers import CondorProvider

    from lfm.parsl import WorkQueueExecutor
    mine = user_secret(tmp_path / "site.password", "shared\n")
    for given in (None, str(mine)):
        provider = CondorProvider(init_blocks=0, transfer_input_files=["data.txt"])
        ex = WorkQueueExecutor(provider=provider, port=0, project_password_file=given)
        ex.run_dir = ex.provider.script_dir = str(tmp_path)
        ex.start()  # what the DataFlowKernel does on load; no block is launched
        try:
            password = ex.lfm_executor.backend.password_file
            assert password == (given or password) and os.path.isfile(password)
            # the job's sandbox receives the worker binary and the password file,
            # and the worker reads it there, by its base name
            assert provider.transfer_input_files[0] == "data.txt"
            assert provider.transfer_input_files[-1] == password
            assert os.path.basename(provider.transfer_input_files[1]) == "work_queue_worker"
            argv = shlex.split(ex._get_launch_command("0"))
            assert argv[1] == "./work_queue_worker", argv
            assert after(argv, "--password") == os.path.basename(password)
            assert argv[-1] == str(ex.manager_port)
        finally:
            ex.shutdown()
        assert os.path.exists(password) == (given is not None)
