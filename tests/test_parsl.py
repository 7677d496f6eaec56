"""lfm's Parsl executor with a real DataFlowKernel: python and bash apps,
resource specifications, app failures, Parsl retries, dependencies, exhaustion
retries inside lfm, and Work Queue."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import pytest

parsl = pytest.importorskip("parsl", reason="Parsl is not installed (pip install 'lfm[parsl]')")

from parsl import Config, bash_app, join_app, python_app  # noqa: E402
from parsl.app.errors import BashExitFailure  # noqa: E402
from parsl.dataflow.errors import DependencyError  # noqa: E402
from parsl.executors.errors import InvalidResourceSpecification  # noqa: E402

from lfm import ResourceExhaustion  # noqa: E402
from lfm.executors import work_queue_available  # noqa: E402
from lfm.parsl import ACCEPTED_SPECIFICATION, AutolabelExecutor  # noqa: E402

MB = 2 ** 20
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- apps (module level: the call process imports them by reference) --------------------
@python_app
def square(x, parsl_resource_specification={}):  # noqa: B006 - Parsl's convention
    return x * x


@python_app
def add(a, b):
    return a + b


@python_app
def hold(mb, seconds=0.0, parsl_resource_specification={}):  # noqa: B006
    block = bytearray(int(mb * MB))
    time.sleep(seconds)
    return len(block) // MB


@join_app
def sum_of_squares(n):
    """A join app: runs in Parsl's internal executor, its inner apps in lfm's."""
    return add(square(n), square(n + 1))


@python_app
def fail(message):
    raise ValueError(message)


@python_app
def flaky(marker):
    """Fails on its first try (no marker file yet), succeeds on the next."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first try fails")
    return "second try"


@bash_app
def allocate(mb, seconds=0.0, stdout=None, stderr=None, parsl_resource_specification={}):  # noqa: B006
    return (f"{sys.executable} -c 'import time; b = bytearray({mb} * 2**20); time.sleep({seconds}); "
            "print(len(b) // 2**20)'")


@bash_app
def exit_with(code):
    return f"exit {code}"


# ---- fixtures ----------------------------------------------------------------------------
@pytest.fixture
def load(tmp_path):
    """``load(retries=0, **executor_options)`` loads a DataFlowKernel with one
    lfm executor (trace in the run_dir, predictor greedy) and returns the
    executor; cleaned up after."""
    loaded = []

    def _load(retries: int = 0, **options):
        options.setdefault("trace", True)
        # greedy's cold start (1000 MB) fits every app here at once, so the tests of
        # measurement see one attempt per app (auto, the default, starts smaller)
        options.setdefault("predictor", "greedy")
        ex = AutolabelExecutor(label="lfm", **options)
        parsl.load(Config(executors=[ex], retries=retries, run_dir=str(tmp_path / "runinfo")))
        loaded.append(ex)
        return ex

    yield _load
    if loaded:
        parsl.dfk().cleanup()
        parsl.clear()


def rows(ex):
    with open(ex.trace_path) as f:
        return [json.loads(line) for line in f if line.strip()]


# ---- tests -------------------------------------------------------------------------------
def test_import_lfm_does_not_import_parsl():
    code = "import sys, lfm, lfm.executors; print('parsl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         check=True)
    assert out.stdout.strip() == "False"


def test_without_parsl_the_import_error_says_how_to_install():
    code = ("import sys; sys.modules['parsl'] = None\n"
            "try:\n    import lfm.parsl\nexcept ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         check=True)
    assert "pip install 'lfm[parsl]'" in out.stdout


def test_bad_configuration_names_the_known_choices():
    with pytest.raises(ValueError, match="unknown backend 'slurm'; known: local, workqueue"):
        AutolabelExecutor(backend="slurm")
    with pytest.raises(ValueError, match="unknown predictor 'nope'; known predictors: .*greedy"):
        AutolabelExecutor(predictor="nope")


def test_executor_not_loaded_says_so():
    ex = AutolabelExecutor(label="idle", backend="local")
    assert "label='idle'" in repr(ex) and ex.trace_path is None
    assert not ex.monitor_resources()  # lfm measures the apps itself
    with pytest.raises(RuntimeError, match="was not started: load it with parsl.load"):
        ex.submit(square.func, {}, 1)


def test_python_apps_with_dependencies(load):
    ex = load()
    total = add(square(3), square(4))  # futures of other apps as arguments
    assert total.result(timeout=60) == 25
    stats = ex.stats()
    assert stats.loc["square", "tasks"] == 2 and stats.loc["add", "tasks"] == 1
    assert stats.loc["square", "ok"] == 2
    trace = rows(ex)
    assert sorted(r["category"] for r in trace) == ["add", "square", "square"]
    assert all(r["status"] == "ok" and r["memory"] > 0 for r in trace)
    assert sum_of_squares(2).result(timeout=60) == 13
    assert ex.stats().loc["square", "tasks"] == 4


def test_failed_dependency_fails_the_dependent_app(load):
    load()
    downstream = add(fail("upstream broke"), 1)
    with pytest.raises(DependencyError):
        downstream.result(timeout=60)


def test_bash_app_process_tree_is_measured(load, tmp_path):
    ex = load()
    out = tmp_path / "out.txt"
    assert allocate(80, stdout=str(out)).result(timeout=60) == 0
    assert out.read_text().strip().endswith("80")
    (row,) = rows(ex)
    assert row["category"] == "allocate" and row["status"] == "ok"
    # the command's child python allocated 80 MB: the tree's peak holds it
    assert row["memory"] >= 80
    assert row["total_processes"] >= 1  # the command (the wrapper is not counted)


def test_bash_app_is_measured_like_lfm_run(load, tmp_path):
    from lfm.monitor import run_command
    ex = load()
    assert allocate(50, seconds=0.3, stdout=str(tmp_path / "o.txt")).result(timeout=60) == 0
    (row,) = rows(ex)
    code = "import time; b = bytearray(50 * 2**20); time.sleep(0.3); print(len(b) // 2**20)"
    _, cmd = run_command(["/bin/sh", "-c", f"{sys.executable} -c '{code}'"])
    # without Parsl's wrapper process (~36 MB) the app's memory is the command's
    assert abs(row["memory"] - cmd["memory"]) < 15, (row["memory"], cmd["memory"])


def test_bash_app_over_its_label_is_retried_with_its_whole_tree(load, tmp_path):
    ex = load()
    out = tmp_path / "big.txt"
    spec = {"memory": 60}  # the command's child alone needs 150 MB
    assert allocate(150, seconds=0.3, stdout=str(out),
                    parsl_resource_specification=spec).result(timeout=120) == 0
    attempts = sorted(rows(ex), key=lambda r: r["attempt"])
    assert attempts[0]["status"] == "exhausted" and attempts[0]["exceeded"] == ["memory"]
    assert attempts[-1]["status"] == "ok" and attempts[-1]["memory"] >= 150
    assert out.read_text().strip().endswith("150")


def test_bash_app_failure_reaches_the_app_future(load):
    ex = load()
    with pytest.raises(BashExitFailure) as info:
        exit_with(3).result(timeout=60)
    assert info.value.exitcode == 3
    stats = ex.stats()
    assert stats.loc["exit_with", "errors"] == 1 and stats.loc["exit_with", "ok"] == 0
    assert [r["status"] for r in rows(ex)] == ["error"]


def test_app_exception_propagates_and_is_not_learnt(load):
    ex = load()
    with pytest.raises(ValueError, match="bad input 42"):
        fail("bad input 42").result(timeout=60)
    assert ex.stats().loc["fail", "errors"] == 1
    assert ex.lfm_executor.predictor.describe("fail")["memory"]["tasks"] == 0


def test_parsl_retries_rerun_a_failing_app(load, tmp_path):
    ex = load(retries=2)
    future = flaky(str(tmp_path / "marker"))
    assert future.result(timeout=60) == "second try"
    assert future.task_record["fail_count"] == 1  # one Parsl retry
    stats = ex.stats()
    # each Parsl try is a new lfm task: the failed one and the successful one
    assert stats.loc["flaky", "tasks"] == 2
    assert stats.loc["flaky", "errors"] == 1 and stats.loc["flaky", "ok"] == 1


def test_resource_specification_keys(load):
    ex = load()
    spec = {"cores": 1, "memory": 500, "disk": 100, "category": "tiny"}
    assert square(5, parsl_resource_specification=spec).result(timeout=60) == 25
    (row,) = rows(ex)
    assert row["category"] == "tiny"
    assert (row["alloc_cores"], row["alloc_memory"], row["alloc_disk"]) == (1, 500, 100)

    with pytest.raises(InvalidResourceSpecification) as info:
        square(1, parsl_resource_specification={"memory": 100, "gpus": 1}).result(timeout=60)
    assert info.value.invalid_keys == {"gpus"}
    assert all(key in str(info.value) for key in ACCEPTED_SPECIFICATION)

    with pytest.raises(InvalidResourceSpecification, match="memory must be a positive number"):
        square(1, parsl_resource_specification={"memory": -5}).result(timeout=60)
    with pytest.raises(InvalidResourceSpecification, match="category must be a non-empty string"):
        square(1, parsl_resource_specification={"category": 7}).result(timeout=60)


def test_exhaustion_is_retried_inside_the_executor(load):
    ex = load(retries=0)
    # declared 60 MB is a wrong first guess for a 150 MB app
    future = hold(150, 0.3, parsl_resource_specification={"memory": 60})
    assert future.result(timeout=120) == 150
    assert future.task_record["fail_count"] == 0  # no Parsl retry was spent
    attempts = sorted(rows(ex), key=lambda r: r["attempt"])
    assert attempts[0]["status"] == "exhausted" and attempts[0]["alloc_memory"] == 60
    assert attempts[0]["exceeded"] == ["memory"]
    assert attempts[-1]["status"] == "ok" and attempts[-1]["alloc_memory"] > 150
    labels = [r["alloc_memory"] for r in attempts]
    assert labels == sorted(set(labels))  # each retry strictly larger
    stats = ex.stats()
    assert stats.loc["hold", "tasks"] == 1 and stats.loc["hold", "retries"] == len(attempts) - 1 >= 1


def test_declared_resources_are_hard_limits_without_autolabel(load):
    ex = load(autolabel=False)
    future = hold(150, 0.3, parsl_resource_specification={"memory": 60})
    with pytest.raises(ResourceExhaustion) as info:
        future.result(timeout=120)
    assert info.value.exceeded == {"memory": 60}
    assert [r["status"] for r in rows(ex)] == ["exhausted"]


def test_one_category_without_autocategory(load):
    ex = load(autocategory=False)
    assert square(2).result(timeout=60) == 4 and add(1, 2).result(timeout=60) == 3
    assert {r["category"] for r in rows(ex)} == {"default"}


WQ_AVAILABLE, WQ_WHY = work_queue_available()


@pytest.mark.workqueue
@pytest.mark.skipif(not WQ_AVAILABLE, reason=f"real Work Queue is not installed: {WQ_WHY}")
def test_work_queue_backend_runs_python_and_bash_apps(load, tmp_path):
    ex = load(backend="workqueue", workers=[{"cores": 1, "memory": 1000, "disk": 2000}],
              verbose=False)
    out = tmp_path / "wq.txt"
    results = [add(square(2), 1), allocate(40, stdout=str(out)),
               hold(150, 0.3, parsl_resource_specification={"memory": 60})]
    assert [f.exception(timeout=180) for f in results] == [None, None, None]
    assert [f.result() for f in results] == [5, 0, 150]
    assert out.read_text().strip().endswith("40")
    trace = rows(ex)
    assert all(r["backend"] == "workqueue" for r in trace)
    held = sorted((r for r in trace if r["category"] == "hold"), key=lambda r: r["attempt"])
    summary = [(r["status"], r["alloc_memory"], r.get("granted_memory"), r["exceeded"]) for r in held]
    assert held[0]["status"] == "exhausted" and held[-1]["status"] == "ok", summary
    # Work Queue granted the retry the larger label lfm chose (in whole MB)
    assert held[-1]["alloc_memory"] > 60, summary
    assert held[-1]["granted_memory"] == math.ceil(held[-1]["alloc_memory"]), summary
    assert ex.stats().loc["hold", "retries"] == len(held) - 1 >= 1


def test_readme_parsl_program_runs(tmp_path):
    """The README's complete Parsl program (the python block that loads a
    config with lfm's executor) runs as printed."""
    import re
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    programs = [b for b in blocks if "lfm.parsl" in b and "parsl.load(" in b]
    if not programs:
        pytest.skip("README.md has no complete Parsl program yet")
    script = tmp_path / "workflow.py"
    script.write_text(programs[0])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
