"""A call's disk is the space occupied in its own scratch area, as Work Queue
means it: real processes writing real files, on disk and on tmpfs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from lfm import MB, CallExited, CallKilled, ResourceExhaustion
from lfm.monitor import run_call, run_command
from lfm.monitor.disk import SCRATCH_PREFIX, remove_scratch

TMPFS = "/dev/shm"
MODES = [True, "fork"]


def fill(path: str, mb: int) -> None:
    block = b"\x01" * MB
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(block)


def rewrite(mb: int, times: int) -> str:
    """Rewrite one file of ``mb`` MB in TMPDIR ``times`` times."""
    target = os.path.join(tempfile.gettempdir(), "scratch.bin")
    for _ in range(times):
        fill(target, mb)
    return tempfile.gettempdir()


def write_then_delete(mb: int) -> None:
    first = os.path.join(os.environ["TMPDIR"], "a")
    fill(first, mb)
    time.sleep(0.2)  # a walk or two sees it
    os.unlink(first)
    fill(os.path.join(os.environ["TMPDIR"], "b"), mb)


def hold(mb: int, seconds: float) -> str:
    fill(os.path.join(tempfile.gettempdir(), "held"), mb)
    time.sleep(seconds)
    return os.environ["TMPDIR"]


def report_then(how: str, where: str) -> None:
    """Write this call's TMPDIR into ``where``, then end as ``how`` says."""
    with open(where, "w") as f:
        f.write(os.environ["TMPDIR"])
    fill(os.path.join(os.environ["TMPDIR"], "f"), 2)
    os.makedirs(os.path.join(os.environ["TMPDIR"], "sub", "deep"))
    if how == "raise":
        raise ValueError("boom")
    if how == "exit":
        os._exit(3)
    if how == "signal":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "killed":
        time.sleep(60)
    if how == "daemon":  # a grandchild still writing into the scratch area
        subprocess.Popen([sys.executable, "-c",
                          "import os, time\nwhile True:\n open(os.path.join(os.environ['TMPDIR'],"
                          "'d'), 'ab').write(b'x' * 4096); time.sleep(0.01)"],
                         start_new_session=True)
        time.sleep(0.3)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("isolate", MODES)
def test_rewriting_a_file_counts_once(isolate):
    where, res = run_call(rewrite, (300, 5), limits={"disk": 1000}, isolate=isolate)
    assert 295 <= res["disk"] <= 310, res
    assert res["bytes_written"] >= 1490, res  # the separate I/O counter saw all five
    assert os.path.basename(where).startswith(SCRATCH_PREFIX) and not os.path.exists(where)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("isolate", MODES)
def test_occupancy_over_the_disk_limit_is_an_exhaustion(isolate):
    started = time.monotonic()
    with pytest.raises(ResourceExhaustion) as info:
        run_call(hold, (300, 30), limits={"disk": 100}, isolate=isolate)
    assert info.value.exceeded == {"disk": 100.0}
    assert info.value.resources["disk"] > 100
    assert time.monotonic() - started < 20  # killed while holding, not after 30 s


@pytest.mark.timeout(60)
def test_a_deleted_file_frees_its_space():
    _, res = run_call(write_then_delete, (40,))
    assert 39 <= res["disk"] <= 45, res  # the peak is one file, never two


@pytest.mark.timeout(60)
@pytest.mark.parametrize("isolate", MODES)
def test_concurrent_calls_have_their_own_tmpdir_and_disk(isolate):
    results = {}

    def run(mb):
        results[mb] = run_call(hold, (mb, 0.6), isolate=isolate)

    threads = [threading.Thread(target=run, args=(mb,)) for mb in (10, 60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(50)
    (small_dir, small), (big_dir, big) = results[10], results[60]
    assert small_dir != big_dir
    assert 9.5 <= small["disk"] <= 12, small
    assert 59 <= big["disk"] <= 63, big


@pytest.mark.timeout(60)
@pytest.mark.parametrize("isolate", MODES)
@pytest.mark.parametrize("how", ["ok", "raise", "exit", "signal", "killed", "daemon"])
def test_scratch_is_removed_however_the_call_ends(tmp_path, isolate, how):
    where = str(tmp_path / "where")
    expected = {"raise": ValueError, "exit": CallExited, "signal": CallKilled,
                "killed": ResourceExhaustion}.get(how)
    limits = {"wall_time": 1.0} if how == "killed" else None
    if expected is None:
        run_call(report_then, (how, where), limits=limits, isolate=isolate)
    else:
        with pytest.raises(expected):
            run_call(report_then, (how, where), limits=limits, isolate=isolate)
    scratch = open(where).read()
    assert os.path.basename(scratch).startswith(SCRATCH_PREFIX)
    assert os.path.dirname(scratch) == tempfile.gettempdir()
    assert not os.path.exists(scratch), os.listdir(scratch)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("isolate", MODES)
def test_workdir_is_measured_whole_on_tmpfs_too(tmp_path, isolate):
    bases = [str(tmp_path)]
    if os.path.isdir(TMPFS):
        bases.append(TMPFS)
    for base in bases:
        workdir = tempfile.mkdtemp(dir=base)
        try:
            fill(os.path.join(workdir, "input"), 10)  # there before the call: counts
            scratch, res = run_call(hold, (20, 0.1), isolate=isolate, workdir=workdir)
            assert os.path.dirname(scratch) == workdir and not os.path.exists(scratch)
            assert 29.5 <= res["disk"] <= 32, (base, res)
            assert os.listdir(workdir) == ["input"]
        finally:
            remove_scratch(workdir)


@pytest.mark.timeout(60)
def test_inline_disk_needs_a_workdir(tmp_path):
    def put(mb):
        fill(str(tmp_path / "out"), mb)

    _, res = run_call(put, (15,), isolate=False, workdir=tmp_path)
    assert 14.5 <= res["disk"] <= 17, res
    _, res = run_call(put, (1,), isolate=False)
    assert "disk" not in res
    with pytest.raises(ValueError, match="disk limit cannot be enforced inline.*workdir="):
        run_call(put, (1,), isolate=False, limits={"disk": 10})
    with pytest.raises(ValueError, match="workdir must be an existing directory.*no such"):
        run_call(put, (1,), workdir=tmp_path / "missing")


@pytest.mark.timeout(60)
def test_commands_get_a_scratch_tmpdir(tmp_path):
    script = 'head -c 25000000 /dev/zero > "$TMPDIR/x"; echo "$TMPDIR" > ' + str(tmp_path / "t")
    code, res = run_command(["sh", "-c", script])
    assert code == 0 and 23 <= res["disk"] <= 26, res
    scratch = (tmp_path / "t").read_text().strip()
    assert os.path.basename(scratch).startswith(SCRATCH_PREFIX) and not os.path.exists(scratch)
    # lfm run --workdir: that directory's occupancy
    (tmp_path / "w").mkdir()
    out = subprocess.run([sys.executable, "-m", "lfm", "run", "--workdir", str(tmp_path / "w"),
                          "--", "sh", "-c", f"head -c 5000000 /dev/zero > {tmp_path / 'w' / 'y'}"],
                         capture_output=True, text=True, check=True, timeout=50)
    report = json.loads(out.stdout)
    assert 4.5 <= report["disk_MB"] <= 5.5, report
