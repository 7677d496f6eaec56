"""The process layer: spawners, the orphan rule, pidfd kills, walking a tree
down from its root, and an import error in the fork server. Real processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

from lfm import CallExited
from lfm.monitor import procfs, reaping, run_call
from lfm.monitor.spawner import Ended, Spawner
from lfm.monitor.tree import TreeSampler

MODES = [True, "fork"]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


DAEMON = ("import os, sys, time\n"
          "if os.fork(): os._exit(0)\n"
          "os.setsid()\n"
          "open(sys.argv[1], 'w').write(str(os.getpid()))\n"
          "time.sleep(120)\n")


def leave_a_daemon_and_die(pid_file: str, die_file: str) -> None:
    """Start a double-forked daemon in its own session, wait for ``die_file``,
    then end abruptly."""
    subprocess.run([sys.executable, "-c", DAEMON, pid_file], check=True)
    wait_for(die_file)
    os._exit(9)


def wait_for(path: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


def steady_with_a_child(pid_file: str, go_file: str) -> str:
    """Run a child until ``go_file`` appears; return 'done' if it survived."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(pid_file, "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    wait_for(go_file)
    survived = child.poll() is None
    child.kill()
    child.wait()
    return "done" if survived else "child was killed"


def in_thread(results: dict, key: str, fn, *args, **kwargs) -> threading.Thread:
    def target():
        try:
            results[key] = run_call(fn, args, **kwargs)[0]
        except BaseException as exc:  # noqa: BLE001 - checked by the test
            results[key] = exc
    thread = threading.Thread(target=target)
    thread.start()
    return thread


@pytest.mark.timeout(90)
@pytest.mark.parametrize("isolate", MODES)
def test_an_abrupt_end_kills_its_daemon_and_spares_the_other_call(tmp_path, isolate):
    daemon_file, die, other_file, go = (str(tmp_path / n) for n in ("daemon", "die", "other", "go"))
    results: dict[str, object] = {}
    # the caller's own children: one from before the calls (in a session of its
    # own), one started while they run (in the caller's process group)
    before = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                              start_new_session=True)
    dying = in_thread(results, "dying", leave_a_daemon_and_die, daemon_file, die, isolate=isolate)
    wait_for(daemon_file)
    # started after the dying call: a spawner that spared only what existed
    # before that call would kill this one's process
    steady = in_thread(results, "steady", steady_with_a_child, other_file, go, isolate=isolate)
    wait_for(other_file)
    during = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    call_pid, child_pid = map(int, open(other_file).read().split())
    daemon = int(open(daemon_file).read())
    try:
        open(die, "w").close()
        dying.join(30)
        assert isinstance(results["dying"], CallExited), results
        assert wait_gone(daemon), "the call's daemon outlived it"
        assert alive(call_pid) and alive(child_pid), "another call's processes were killed"
        assert before.poll() is None and during.poll() is None, "the caller's own child was killed"
    finally:
        open(go, "w").close()
        steady.join(30)
        for proc in (before, during):
            proc.kill()
            proc.wait()
        reaping.kill(daemon)
    assert results["steady"] == "done", results


@pytest.mark.timeout(60)
def test_walking_down_finds_adopted_orphans_without_scanning_proc():
    code = textwrap.dedent("""
        import ctypes, os, sys, time
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        if os.fork() == 0:
            if os.fork() == 0:
                time.sleep(60)
            os._exit(0)
        os.wait()
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        below, method = procfs.walk_down(proc.pid)
        assert method == procfs.WALK_CHILDREN
        assert len(below) == 1 and below[0][1] == proc.pid  # the orphan, adopted
        assert procfs.descendants_by_scan(proc.pid) == below
        sampler = TreeSampler(proc.pid)
        snap = sampler.sample()
        assert sampler.method == procfs.WALK_CHILDREN and snap["processes"] == 2
        assert set(sampler.started) == {proc.pid, below[0][0]}
    finally:
        orphans = [pid for pid, _ in procfs.walk_down(proc.pid)[0]]
        proc.kill()
        proc.wait()
        for pid in orphans:
            reaping.kill(pid)
            try:  # adopted by this process when it is a subreaper (after isolate="fork")
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


@pytest.mark.timeout(60)
def test_a_pidfd_kill_never_reaches_a_reused_pid():
    proc = subprocess.Popen(["sleep", "60"])
    try:
        started = procfs.read_stat(proc.pid)[4]
        # the start time of another process under the same pid: not signalled
        assert not reaping.kill(proc.pid, started + 1)
        time.sleep(0.1)
        assert proc.poll() is None
        assert reaping.kill(proc.pid, started)
        assert proc.wait(10) == -signal.SIGKILL
        assert not reaping.kill(proc.pid, started)  # gone (reaped): nothing to signal
    finally:
        proc.kill()
        proc.wait()


def test_both_spawners_follow_one_protocol():
    from lfm.monitor import directfork, forkserver
    for cls in (forkserver.ForkServer, directfork.DirectFork):
        assert issubclass(cls, Spawner)
        for method in ("open_call", "reap", "alive"):
            assert getattr(cls, method) is not getattr(Spawner, method), (cls, method)
    ended = Ended(0, 1.5, 12.0)
    assert (ended.status, ended.cpu_time, ended.maxrss) == (0, 1.5, 12.0)


@pytest.mark.timeout(60)
def test_an_import_error_in_the_fork_server_is_the_calls_error(tmp_path, monkeypatch):
    flag = tmp_path / "broken"
    module = tmp_path / "lfm_import_probe_mod.py"
    module.write_text(textwrap.dedent(f"""
        import os
        if os.path.exists({str(flag)!r}):
            raise LookupError("this module breaks when imported")

        def double(x):
            return 2 * x
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import lfm_import_probe_mod as mod  # fine here, in the caller
    flag.touch()  # from now on, importing it fails: in the fork server, and the call's process
    with pytest.raises(LookupError, match="breaks when imported") as info:
        run_call(mod.double, (2,))
    cause = info.value.__cause__
    assert "lfm_import_probe_mod.py" in cause.tb and "LookupError" in cause.tb
    assert any("while loading the call" in note for note in info.value.__notes__)
    flag.unlink()
    assert run_call(mod.double, (4,))[0] == 8  # the server survived and imports it now


def is_subreaper() -> bool:
    import ctypes
    flag = ctypes.c_int(-1)
    assert ctypes.CDLL(None, use_errno=True).prctl(37, ctypes.byref(flag), 0, 0, 0) == 0
    return bool(flag.value)  # PR_GET_CHILD_SUBREAPER


@pytest.mark.timeout(60)
def test_a_direct_fork_caller_is_a_subreaper_only_while_calls_run():
    assert run_call(is_subreaper, isolate="fork")[0] is True  # the call's own process
    assert not is_subreaper()  # the caller: orphans of unrelated programs go to init
    assert run_call(os.getppid, isolate="fork")[0] == os.getpid()
    assert not is_subreaper()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("isolate", MODES)
def test_without_pidfds_a_limit_still_kills(monkeypatch, isolate):
    from lfm import ResourceExhaustion
    monkeypatch.setattr(reaping, "_pidfd_open", None)  # as on a kernel older than 5.3
    started = time.monotonic()
    with pytest.raises(ResourceExhaustion):
        run_call(time.sleep, (30,), limits={"wall_time": 0.5}, isolate=isolate)
    assert time.monotonic() - started < 10


def child_for(seconds: float) -> int:
    subprocess.run([sys.executable, "-c", f"import time; time.sleep({seconds})"], check=True)
    return os.getpid()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("isolate", MODES)
def test_sampling_never_scans_every_process(monkeypatch, isolate):
    def scan():
        raise AssertionError("sampled by scanning every /proc entry")

    monkeypatch.setattr(procfs, "all_parents", scan)
    _, res = run_call(child_for, (0.4,), isolate=isolate, keep_snapshots=True, interval=0.05)
    assert res.method == "VmHWM+wait4+sampling"
    assert max(s["processes"] for s in res.snapshots if not s["final"]) == 2  # the child was seen
