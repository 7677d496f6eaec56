"""``pack=True`` through Parsl: the static scan sees the app's own module
behind Parsl's wrappers; ``lfm.parsl.WorkQueueExecutor(pack=True)`` runs apps
on ``LocalProvider`` blocks whose workers have only a bare Python (a ``venv
--without-pip``: neither lfm, nor its dependencies, nor the apps' modules);
``lfm.parsl.AutolabelExecutor(backend="workqueue", pack=True)`` too."""
from __future__ import annotations

import functools
import json
import os
import re
import subprocess

import pytest

parsl = pytest.importorskip("parsl", reason="Parsl is not installed (pip install 'lfm[parsl]')")

from parsl import bash_app  # noqa: E402
from parsl.providers import LocalProvider  # noqa: E402

import pack_app  # noqa: E402
import pack_parsl_app  # noqa: E402
from doubling import Doubling  # noqa: E402
from lfm.pack.scan import app_function, scan_function  # noqa: E402
from lfm.parsl import AutolabelExecutor  # noqa: E402
from lfm.parsl.common import RaiseAppErrors  # noqa: E402
from test_pack_wq import AVAILABLE, SIZE, WHY, bare_env, bare_python, start_worker, stop  # noqa: E402,F401
from parsl_helpers import ParslSession  # noqa: E402



def needs_wq(test):
    """A test that runs real Work Queue (skipped without it, failed in CI)."""
    skip = pytest.mark.skipif(not AVAILABLE, reason=f"real Work Queue is not installed: {WHY}")
    return pytest.mark.workqueue(skip(test))


class Capturing(AutolabelExecutor):
    """lfm's local Parsl executor, keeping the functions the DataFlowKernel submits."""

    def __init__(self, **options):
        super().__init__(**options)
        self.submitted = []

    def submit(self, func, resource_specification, *args, **kwargs):
        self.submitted.append(func)
        return super().submit(func, resource_specification, *args, **kwargs)


@pytest.fixture
def dfk(tmp_path):
    """``dfk(executor)``: a DataFlowKernel with that executor until the test ends."""
    sessions = []

    def _load(executor):
        sessions.append(ParslSession(tmp_path, executor))
        return sessions[-1].__enter__()

    yield _load
    for session in sessions:
        session.__exit__(None, None, None)


# ---- the static scan behind Parsl's wrappers ---------------------------------------------
@pytest.mark.timeout(120)
def test_scan_finds_the_apps_module_behind_parsls_wrappers(dfk, tmp_path):
    ex = dfk(Capturing(label="capture", backend="local", predictor="greedy"))
    assert pack_parsl_app.total(10).result(timeout=60) == 45.0
    submitted = ex.submitted[0]  # what the DataFlowKernel handed the executor
    user, wrappers = app_function(RaiseAppErrors(submitted))
    assert user is pack_parsl_app.total.func.__wrapped__  # PythonApp keeps wrap_error(app)
    assert "parsl.app.errors" in wrappers and "lfm.parsl.common" in wrappers
    found = scan_function(RaiseAppErrors(submitted))
    # the app's module and its helper (numpy through it), not the wrappers' modules
    assert {"pack_parsl_app", "pack_helper", "numpy"} <= set(found), found
    # and Parsl itself: the worker imports it to run Parsl's wrapper
    assert "parsl" in found and "lfm" in found
    # a bash app: partial(remote_side_bash_executor, app) inside Parsl's error wrapper
    bash = RaiseAppErrors(bash_app(pack_app.run).wrapped_remote_function)
    assert app_function(bash)[0] is pack_app.run
    assert {"pack_app", "pack_helper", "numpy", "parsl"} <= set(scan_function(bash))
    # a partial of the app with ordinary arguments is the app
    assert app_function(functools.partial(pack_app.run, 3)) == (pack_app.run, [])


# ---- lfm.parsl.WorkQueueExecutor(pack=True) on bare provider blocks ----------------------
def bare_worker_init(python: str) -> str:
    """A LocalProvider block's ``worker_init``: the bare venv's python3 first
    on PATH, nothing of this process's Python environment."""
    return (f"export PATH={os.path.dirname(python)}:/usr/local/bin:/usr/bin:/bin; "
            "unset PYTHONPATH PYTHONHOME VIRTUAL_ENV PYTHONPYCACHEPREFIX")


@pytest.mark.timeout(420)
@needs_wq
def test_workqueue_executor_packs_apps_for_bare_provider_blocks(bare_python, dfk, tmp_path,
                                                                monkeypatch):
    from lfm.parsl import WorkQueueExecutor
    init = bare_worker_init(bare_python)
    # what a block's shell sees: the bare python3, which finds neither numpy, lfm nor the app
    probe = subprocess.run(["bash", "-c", f"{init}; cd /; python3 -c 'import sys; print(sys.executable)';"
                            " for m in numpy lfm cloudpickle parsl pack_helper; do"
                            " python3 -c \"import $m\" 2>/dev/null && echo found $m; done"],
                           capture_output=True, text=True, timeout=120)
    assert probe.stdout.splitlines() == [bare_python], probe.stdout + probe.stderr
    cache = tmp_path / "packages"
    monkeypatch.setenv("LFM_PACK_CACHE", str(cache))
    ex = dfk(WorkQueueExecutor(
        label="packed", port=0, pack=True, trace=True,
        provider=LocalProvider(init_blocks=1, min_blocks=0, max_blocks=1, worker_init=init),
        worker_options=f"--workdir {tmp_path / 'w'}"))
    (tmp_path / "w").mkdir(exist_ok=True)
    executable, package, _ = pack_parsl_app.where().result(timeout=300)
    assert executable == bare_python and package and "lfm-env-" in package
    assert pack_parsl_app.total(10).result(timeout=120) == 45.0
    assert pack_parsl_app.total(100).result(timeout=120) == 4950.0
    backend = ex.lfm_executor.backend
    stats = dict(backend.pack.stats)
    # measurement came back with the results
    assert ex.stats().loc["total", "ok"] == 2
    rows = [json.loads(line) for line in open(ex.trace_path) if line.strip()]
    assert [r["status"] for r in rows] == ["ok"] * 3
    assert all(r["memory"] > 0 and r["wall_time"] > 0 for r in rows), rows
    measured = ex.lfm_executor.environment("total")
    assert measured.source == "run"
    # a python app runs on the worker as its own function (no Parsl wrapper): Parsl is not needed there
    assert "numpy" in measured.distributions and "pack_helper" in measured.local
    assert "parsl" not in measured.distributions
    # one package (the scan's, which the measured imports stay within), built
    # once, sent once, unpacked once; the two later tasks reused it
    assert (stats["packages"], stats["packages_built"], stats["unpacked"], stats["reused"]) == \
        (1, 1, 1, 2), stats
    names = [p.name for p in backend.pack.packages.values()]
    log = open(os.path.join(ex.run_dir, "packed", "debug_log"), errors="replace").read()
    sends = [len(re.findall(rf"put file-\S*-{re.escape(n)} ", log)) for n in names]
    assert sends == [1], sends
    package = next(iter(backend.pack.packages.values()))
    print(f"\nParsl app package: {package.size_mb:.1f} MB, {package.files} files, "
          f"{len(package.spec.distributions)} distributions: {package.spec.summary()}")


# ---- lfm.parsl.AutolabelExecutor(backend="workqueue", pack=True) -------------------------
@pytest.mark.timeout(420)
@needs_wq
def test_autolabel_executor_on_workqueue_packs_apps(bare_python, dfk, tmp_path):
    ex = dfk(AutolabelExecutor(
        label="lfmpack", backend="workqueue", pack=True, pack_cache=str(tmp_path / "packages"),
        predictor=Doubling(resources=("cores", "memory", "disk"), first=400), max_resources=SIZE,
        python=bare_python, verbose=False))
    worker = start_worker(ex.lfm_executor, tmp_path / "w")
    try:
        assert pack_parsl_app.total(10).result(timeout=300) == 45.0
        executable, package, _ = pack_parsl_app.where().result(timeout=120)
    finally:
        stop(worker)
    assert executable == bare_python and package
    assert ex.stats().loc["total", "ok"] == 1
    assert ex.lfm_executor.backend.pack.stats["unpacked"] == 1
