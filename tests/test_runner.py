"""The Work Queue runner (``python -m lfm.executors.runner IN OUT``) and the
``isolate="fork"`` mode of ``run_call`` it uses: same measurements, limits and
clean-up as the fork server's mode, without a second interpreter.

Each check runs the runner (or a small script) as its own process, as Work
Queue would: fork mode makes its caller a child subreaper, which the test
process must not become.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from lfm import CallExited, CallKilled, ResourceExhaustion
from lfm.executors.runner import read_outcome, write_call

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MB = 2 ** 20


def allocate(mb: int) -> int:
    data = bytearray(b"\x01") * (mb * MB)
    return len(data) // MB


def fail() -> None:
    raise KeyError("no such sample")


def exit_abruptly() -> None:
    os._exit(3)


def leave_children(pid_file: str) -> str:
    """A child in the call's process group and one in a session of its own."""
    procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]),
             subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                              start_new_session=True)]
    with open(pid_file, "w") as f:
        f.write(" ".join(str(p.pid) for p in procs))
    return "left"


def exit_three() -> None:
    sys.exit(3)


def interrupted() -> None:
    raise KeyboardInterrupt("in the call")


def closing() -> None:
    raise GeneratorExit()


def kill_myself() -> None:
    import signal
    os.kill(os.getpid(), signal.SIGKILL)


def working_directory() -> str:
    return os.getcwd()


def site_view() -> tuple:
    """What the call sees of site's set-up."""
    import builtins
    return (sys.flags.no_site, sys.prefix, sys.exec_prefix,
            all(callable(getattr(builtins, n, None)) for n in ("exit", "quit", "help", "license")))


def run_runner(tmp_path, fn, args=(), limits=None, flags=()):
    """Write the call, run the runner in a fresh interpreter, read its outcome.
    ``flags``: the interpreter's and the runner's options, as the Work Queue
    backend gives them."""
    in_path, out_path = str(tmp_path / "in.pkl"), str(tmp_path / "out.pkl")
    write_call(in_path, fn, args, {}, limits or {}, interval=0.05)
    # the runner imports this module (its functions travel by reference), as a
    # worker imports the user's modules
    here = os.path.dirname(os.path.abspath(__file__))
    paths = [ROOT, here, os.environ.get("PYTHONPATH", "")]
    if "-S" in flags:  # as the backend does: this process's sys.path, site's work included
        paths += [p for p in sys.path if p and os.path.exists(p)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    python, options = [sys.executable, *flags[:1]], list(flags[1:])
    proc = subprocess.run([*python, "-m", "lfm.executors.runner", *options, in_path, out_path],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return read_outcome(out_path)


def test_runner_measures_an_exact_peak_in_a_forked_process(tmp_path):
    outcome = run_runner(tmp_path, allocate, (200,))
    assert outcome.status == "ok" and outcome.value == 200
    res = outcome.resources
    # 200 MB plus the runner's small interpreter, which the forked call shares
    assert 200 <= res["memory"] < 200 + 120, dict(res)
    assert res["wall_time"] > 0 and res["cpu_time"] > 0 and res["total_processes"] >= 1


def test_runner_kills_a_call_over_its_memory_label(tmp_path):
    outcome = run_runner(tmp_path, allocate, (400,), limits={"memory": 150})
    assert outcome.status == "exhausted"
    assert outcome.exceeded == {"memory": 150}
    assert isinstance(outcome.error, ResourceExhaustion)
    assert outcome.resources["memory"] > 150


def test_runner_returns_the_call_exception_and_an_abrupt_exit(tmp_path):
    outcome = run_runner(tmp_path, fail)
    assert outcome.status == "error" and isinstance(outcome.error, KeyError)
    assert "no such sample" in outcome.error.__cause__.tb
    outcome = run_runner(tmp_path, exit_abruptly)
    assert outcome.status == "error" and isinstance(outcome.error, CallExited)
    assert outcome.error.code == 3


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fn, kind, words", [
    (exit_three, "CallExited", "exit_three called sys.exit(3)"),
    (interrupted, "CallAborted", "interrupted raised KeyboardInterrupt('in the call')"),
    (closing, "CallAborted", "closing raised GeneratorExit"),
])
def test_a_base_exception_of_the_call_is_the_calls_outcome(tmp_path, fn, kind, words):
    import lfm
    # the runner exits 0 (run_runner checks it) and reports the call's end
    outcome = run_runner(tmp_path, fn)
    assert outcome.status == "error" and isinstance(outcome.error, lfm.MonitorError)
    assert isinstance(outcome.error, getattr(lfm, kind))
    assert words in str(outcome.error)
    if kind == "CallExited":
        assert outcome.error.code == 3 and isinstance(outcome.error.exception, SystemExit)


@pytest.mark.timeout(60)
def test_a_sigkill_is_an_exhaustion_only_when_the_kernel_oom_killed(tmp_path, monkeypatch):
    import lfm.executors.runner as runner
    # a SIGKILL that is not the OOM killer's: the machine's oom_kill count did not rise
    outcome = run_runner(tmp_path, kill_myself)
    assert outcome.status == "error" and isinstance(outcome.error, CallKilled)
    assert outcome.error.signal == 9
    # the same real SIGKILL while the count rises (as when the OOM killer chose the call)
    counts = iter([7, 8])
    monkeypatch.setattr(runner, "oom_kills", lambda: next(counts))
    monkeypatch.setattr(runner, "_baseline", (-1e9, -1))
    result = runner.run_monitored(kill_myself, (), {}, {"memory": 300.0}, interval=0.05)
    assert result["status"] == "exhausted" and result["exceeded"] == {"memory": 300.0}
    assert isinstance(result["error"], ResourceExhaustion)
    assert "OOM killer" in str(result["error"])


def test_the_oom_counter_is_read_from_proc_vmstat():
    from lfm.executors.runner import oom_kills
    if not os.path.exists("/proc/vmstat"):
        pytest.skip("no /proc/vmstat")
    assert oom_kills() >= 0


@pytest.mark.timeout(60)
def test_the_call_runs_in_the_runners_working_directory(tmp_path):
    # on a worker that is the task's sandbox
    outcome = run_runner(tmp_path, working_directory)
    assert outcome.status == "ok" and os.path.realpath(outcome.value) == os.path.realpath(tmp_path)


@pytest.mark.timeout(60)
def test_a_runner_that_cannot_write_its_output_exits_3(tmp_path):
    in_path = str(tmp_path / "in.pkl")
    write_call(in_path, working_directory, (), {}, {}, interval=0.05)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.path.dirname(__file__)])}
    proc = subprocess.run([sys.executable, "-m", "lfm.executors.runner", in_path,
                           str(tmp_path / "no-such-dir" / "out.pkl")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3 and "cannot write the outcome" in proc.stderr


@pytest.mark.timeout(60)
def test_the_runners_own_failures_are_told_apart(tmp_path):
    from lfm.executors.backend import Attempt
    from lfm.executors.workqueue import WorkQueueBackend, WorkQueueTaskError
    try:
        backend = WorkQueueBackend(staging_dir=str(tmp_path), verbose=False)
    except ImportError as exc:
        pytest.skip(f"Work Queue is not installed: {exc}")
    cases = [(3, "", "could not write its output file"),
             (1, "ModuleNotFoundError: No module named 'lfm'", "is lfm installed"),
             (1, "Traceback ...", "exited with status 1 before it could run the call"),
             (127, "sh: python9: not found", "was not found"),
             (137, "", "killed by signal 9")]
    for status, stdout, words in cases:
        attempt = Attempt(1, 1, "c", working_directory, (), {}, {"memory": 100.0})
        attempt.handle = ("k", str(tmp_path / "k"), str(tmp_path / "k" / "out.pkl"))
        outcome = backend._outcome(attempt, {"host": "node7", "result_name": "SUCCESS",
                                             "return_status": status, "stdout": stdout,
                                             "submissions": 1})
        assert outcome.status == "error" and words in str(outcome.error), (status, outcome.error)
        assert isinstance(outcome.error, CallKilled if status == 137 else WorkQueueTaskError)
        assert ("installed" in str(outcome.error)) == ("No module named" in stdout)


@pytest.mark.timeout(60)
def test_the_calls_imports_come_back_with_its_resources(tmp_path):
    from lfm.resources import Resources
    if "imports" not in getattr(Resources, "__slots__", ()):
        pytest.skip("this lfm's Resources has no imports yet")
    from lfm.executors.runner import _write
    path = str(tmp_path / "out.pkl")
    _write(path, {"status": "ok", "value": 1, "resources": {"memory": 12.0},
                  "imports": {"numpy": "/somewhere/numpy/__init__.py"}, "host": "node7"})
    outcome = read_outcome(path)
    assert outcome.resources["memory"] == 12.0
    assert outcome.resources.imports == {"numpy": "/somewhere/numpy/__init__.py"}


def test_runner_leaves_no_process_behind(tmp_path):
    pid_file = str(tmp_path / "pids")
    outcome = run_runner(tmp_path, leave_children, (pid_file,))
    assert outcome.status == "ok" and outcome.value == "left"
    pids = [int(p) for p in open(pid_file).read().split()]
    deadline = time.monotonic() + 5
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.05)
    assert not alive


def test_a_runner_started_without_site_restores_what_the_call_sees(tmp_path):
    # how local workers start it when site only adds paths (lfm.executors.pystart)
    flags = ("-S", "--prefix", sys.prefix, "--exec-prefix", sys.exec_prefix)
    outcome = run_runner(tmp_path, site_view, flags=flags)
    assert outcome.status == "ok", outcome.error
    assert outcome.value == (1, sys.prefix, sys.exec_prefix, True)
    # and it measures, and enforces labels, as when started normally
    outcome = run_runner(tmp_path, allocate, (300,), limits={"memory": 150}, flags=flags)
    assert outcome.status == "exhausted" and outcome.exceeded == {"memory": 150}
    outcome = run_runner(tmp_path, site_view)
    assert outcome.value == (0, sys.prefix, sys.exec_prefix, True)


def test_a_bad_runner_command_line_is_a_usage_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lfm.executors.runner", "--prefix"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "usage: python -m lfm.executors.runner" in proc.stderr


def test_the_runner_imports_only_the_fork_path():
    # every task pays for what the runner imports: none of these is needed
    code = ("import sys, lfm.executors.runner, lfm.monitor.decorator; "
            "print(' '.join(m for m in ('typing', 'threading', 'pathlib', 'numbers', 'cloudpickle', "
            "'lfm.monitor.inline', 'lfm.monitor.command', 'lfm.executors.pystart', 'socket', "
            "'subprocess', 'lfm.monitor.forkserver') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_runner_does_not_import_the_executor_or_heavy_modules():
    code = ("import sys, lfm.executors.runner as r; "
            "print(' '.join(m for m in ('pandas', 'numpy', 'psutil', 'predictors', "
            "'lfm.executors.executor', 'lfm.executors.workqueue', 'lfm.monitor.zygote') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_fork_mode_in_a_script_same_semantics_as_the_fork_server(tmp_path):
    script = tmp_path / "calls.py"
    script.write_text(textwrap.dedent("""
        import os, sys
        from lfm import ResourceExhaustion
        from lfm.monitor import run_call

        class Point:
            def __init__(self, x, y):
                self.x, self.y = x, y

        def grow(mb):
            data = bytearray(b"\\x01") * (mb * 2 ** 20)
            return len(data)

        for mode in (True, "fork"):
            _, res = run_call(grow, (150,), isolate=mode)
            assert 150 <= res["memory"] < 300, (mode, dict(res))
            try:
                run_call(grow, (300,), limits={"memory": 100}, isolate=mode)
            except ResourceExhaustion as exc:
                assert exc.exceeded == {"memory": 100}
            else:
                raise AssertionError("no exhaustion")
            assert run_call(lambda: os.getpid(), isolate=mode)[0] != os.getpid()
            # results whose class or function lives only here (sent by value)
            # come back by value: the standard pickler refuses them in the call
            point = run_call(lambda: Point(1, 2), isolate=mode)[0]
            assert type(point).__name__ == "Point" and (point.x, point.y) == (1, 2), mode
            assert run_call(lambda: (lambda v: v + 1), isolate=mode)[0](1) == 2
        print("ok")
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_bad_isolate_value_is_rejected():
    from lfm.monitor import run_call
    with pytest.raises(ValueError, match="isolate must be True, False or 'fork'"):
        run_call(len, ("x",), isolate="thread")


def test_fork_mode_after_a_crash_kills_the_orphans_but_not_the_callers_children(tmp_path):
    script = tmp_path / "crash.py"
    pid_file = tmp_path / "orphan.pid"
    script.write_text(textwrap.dedent(f"""
        import os, subprocess, sys, time
        from lfm import CallExited
        from lfm.monitor import run_call

        def crash():
            p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                 start_new_session=True)
            open({str(pid_file)!r}, "w").write(str(p.pid))
            time.sleep(0.2)
            os._exit(9)

        own = subprocess.Popen(["sleep", "30"])  # started by the caller itself
        try:
            run_call(crash, isolate="fork")
        except CallExited:
            pass
        orphan = int(open({str(pid_file)!r}).read())
        print(os.path.exists(f"/proc/{{orphan}}"), own.poll() is None)
        own.kill()
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]  # the orphan is gone and reaped; ours lives
