"""``pack=True`` on real Work Queue workers that run a *bare* Python: a virtual
environment made with ``python -m venv --without-pip`` (neither lfm, nor
cloudpickle, nor numpy). The app (``pack_app``) imports numpy and a helper
module beside this file (``pack_helper``)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from doubling import Doubling
from lfm.executors import AutolabelExecutor, WorkQueueTaskError, work_queue_available
import pack_app

AVAILABLE, WHY = work_queue_available()
SIZE = {"cores": 1, "memory": 1500, "disk": 4000}

pytestmark = [pytest.mark.workqueue,
              pytest.mark.skipif(not AVAILABLE, reason=f"real Work Queue is not installed: {WHY}")]


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory):
    """A Python of this minor version with nothing installed."""
    where = tmp_path_factory.mktemp("bare") / "venv"
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", "--without-pip", str(where)], check=True, timeout=120)
    python = str(where / "bin" / "python3")
    probe = subprocess.run([python, "-c", "import numpy"], capture_output=True, text=True,
                           env=bare_env(), timeout=60, cwd=str(where.parent))
    assert probe.returncode != 0 and "No module named 'numpy'" in probe.stderr
    probe = subprocess.run([python, "-c", "import lfm"], capture_output=True, text=True,
                           env=bare_env(), timeout=60, cwd=str(where.parent))
    assert probe.returncode != 0, "the bare Python must not find lfm"
    return python


def bare_env() -> dict[str, str]:
    """A worker's environment: no PYTHONPATH, nothing of lfm's .venv on PATH."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": "C.UTF-8"}


def start_worker(executor, workdir, env=None):
    argv = executor.backend.worker_argv(SIZE, workdir=str(workdir), options=["--timeout=300"])
    argv[0] = shutil.which(argv[0])
    os.makedirs(workdir, exist_ok=True)
    return subprocess.Popen(argv, cwd=str(workdir), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env or bare_env(), start_new_session=True)


def stop(worker):
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(timeout=20)


def executor(bare_python, tmp_path, **options):
    return AutolabelExecutor(backend="workqueue", predictor=Doubling(resources=("cores", "memory", "disk"), first=400),
                             max_resources=SIZE, python=bare_python, verbose=False,
                             debug_log=str(tmp_path / "wq.debug"), **options)


@pytest.mark.timeout(180)
def test_without_pack_a_bare_worker_names_the_missing_module_and_itself(bare_python, tmp_path):
    with executor(bare_python, tmp_path) as ex:
        worker = start_worker(ex, tmp_path / "w")
        try:
            with pytest.raises(WorkQueueTaskError) as info:
                ex.submit(pack_app.run, 10).result(timeout=120)
        finally:
            stop(worker)
    message = str(info.value)
    assert "No module named 'lfm'" in message
    assert info.value.host and info.value.host in message


@pytest.mark.timeout(300)
def test_pack_runs_on_a_bare_worker_and_reuses_the_cached_package(bare_python, tmp_path):
    cache = tmp_path / "packages"
    trace = tmp_path / "trace.jsonl"
    with executor(bare_python, tmp_path, pack=True, pack_cache=str(cache), trace=str(trace)) as ex:
        before = ex.environments.environment("run", pack_app.run)
        assert before.source == "static scan"
        assert "numpy" in before.distributions and "pack_helper" in before.local
        worker = start_worker(ex, tmp_path / "w")
        try:
            first = ex.submit(pack_app.run, 10)
            assert first.result(timeout=200) == 45.0
            second = ex.submit(pack_app.run, 100)
            assert second.result(timeout=120) == 4950.0
        finally:
            stop(worker)
        stats = dict(ex.backend.pack.stats)
        attempts = ex.stats().loc["run"]
        after = ex.environment("run")
    # result and measurement came back
    assert attempts["ok"] == 2
    assert after.source == "run"
    assert "numpy" in after.distributions and set(after.local) >= {"pack_helper", "pack_app", "lfm"}
    rows = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    assert len(rows) == 2 and all("numpy==" in r["environment"] and "+pack_helper" in r["environment"]
                                  for r in rows), rows
    # the measurement came back from the bare worker with the result
    assert all(r["status"] == "ok" and r["memory"] > 0 and r["wall_time"] > 0 for r in rows), rows
    # one package, unpacked once on the worker; the second task reused it
    package_names = {os.path.basename(p) for p in os.listdir(cache) if p.endswith(".tar.gz")}
    assert stats["unpacked"] == 1 and stats["reused"] == 1, str(stats)
    # Work Queue sent the package to the worker once (its cache did the rest)
    log = (tmp_path / "wq.debug").read_text(errors="replace")
    sends = {n: len(re.findall(rf"put file-\S*-{re.escape(n)} ", log)) for n in package_names}
    assert sum(sends.values()) == len(package_names) == 1, sends


@pytest.mark.timeout(300)
def test_a_category_whose_imports_grow_gets_a_new_package_after_one_retry(bare_python, tmp_path):
    cache = tmp_path / "packages"
    # init_command: the task's command is then "init; runner", run by sh inside the package
    with executor(bare_python, tmp_path, pack=True, pack_cache=str(cache),
                  init_command="test -n \"$LFM_PACK_ENV\"") as ex:
        worker = start_worker(ex, tmp_path / "w")
        try:
            assert ex.submit(pack_app.more, 10, "numpy").result(timeout=200) == (45.0, "numpy")
            first = ex.environment("more")
            assert first.source == "run" and "pandas" not in first.distributions
            # pandas: installed here, not in the package, imported by name at run time
            assert ex.submit(pack_app.more, 10, "pandas").result(timeout=200) == (45.0, "pandas")
            grown = ex.environment("more")
        finally:
            stop(worker)
        stats = dict(ex.backend.pack.stats)
    assert stats["import_retries"] == 1, stats
    assert "pandas" in grown.distributions and grown.digest() != first.digest()
    assert stats["packages"] >= 2


@pytest.mark.timeout(300)
def test_include_python_runs_calls_on_a_worker_without_any_python(tmp_path):
    from lfm.pack.python import why_not
    reason = why_not()
    if reason:
        pytest.skip(f"this interpreter cannot be packed: {reason}")
    # the worker's PATH: the bootstrap's tools, and no Python at all
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("sh", "tar", "gzip", "flock", "mkdir", "rm", "mv", "basename", "date"):
        os.symlink(shutil.which(tool), tools / tool)
    env = {"PATH": str(tools), "HOME": str(tmp_path)}
    probe = subprocess.run(["sh", "-c", "command -v python3 || command -v python || echo none"],
                           capture_output=True, text=True, env=env, timeout=30)
    assert probe.stdout.strip() == "none"
    with AutolabelExecutor(backend="workqueue", predictor=Doubling(resources=("cores", "memory", "disk"), first=400),
                           max_resources=SIZE, verbose=False, pack=True, include_python=True,
                           pack_cache=str(tmp_path / "packages")) as ex:
        worker = start_worker(ex, tmp_path / "w", env=env)
        try:
            assert ex.submit(pack_app.run, 10).result(timeout=250) == 45.0
            assert ex.submit(pack_app.run, 4).result(timeout=120) == 6.0
        finally:
            stop(worker)
        stats = dict(ex.backend.pack.stats)
    assert stats["unpacked"] == 1 and stats["reused"] == 1, stats
