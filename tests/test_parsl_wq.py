"""``lfm.parsl.WorkQueueExecutor`` with a real DataFlowKernel, real Work Queue
and workers launched in blocks by Parsl's ``LocalProvider``: blocks, scaling
out and in, no worker left after cleanup, lost blocks, resource
specifications, constructor checks."""
from __future__ import annotations

import os
import time

import pytest

parsl = pytest.importorskip("parsl", reason="Parsl is not installed (pip install 'lfm[parsl]')")

from parsl import Config, bash_app, python_app  # noqa: E402
from parsl.executors.errors import BadStateException, InvalidResourceSpecification  # noqa: E402
from parsl.providers import LocalProvider  # noqa: E402

from parsl_helpers import WQ_AVAILABLE, WQ_MARKS, cleanup_dfk, wait_until, worker_pids  # noqa: E402

pytestmark = WQ_MARKS

if WQ_AVAILABLE:
    from lfm.parsl import WorkQueueExecutor


# ---- apps (module level: workers import this module by reference) -------------------------
@python_app
def block_of(seconds=0.0, parsl_resource_specification={}):  # noqa: B006 - Parsl's convention
    """Which block's worker ran the app (the launch command exports it)."""
    time.sleep(seconds)
    return os.environ.get("PARSL_WORKER_BLOCK_ID")


@python_app
def square(x, parsl_resource_specification={}):  # noqa: B006
    return x * x


@python_app
def interrupt():
    raise KeyboardInterrupt("stop")


@python_app
def exits():
    raise SystemExit(3)


@bash_app
def shell(command, stdout=None, stderr=None):
    return command


# ---- helpers -------------------------------------------------------------------------------
def workers_of(port: int) -> list[int]:
    """work_queue_worker processes connecting to ``port`` (this machine)."""
    return worker_pids(str(port))


@pytest.fixture
def load(tmp_path):
    """``load(provider=..., config={...}, **executor_options)``: a DataFlowKernel
    with one lfm WorkQueueExecutor on port 0; cleaned up after the test (and
    checked: no worker of that manager left)."""
    loaded = []

    def _load(config=None, **options):
        options.setdefault("port", 0)
        options.setdefault("provider", LocalProvider(init_blocks=1, max_blocks=1))
        ex = WorkQueueExecutor(label="lfmwq", **options)
        parsl.load(Config(executors=[ex], run_dir=str(tmp_path / "runinfo"), strategy_period=0.5,
                          **(config or {})))
        loaded.append(ex)
        return ex

    yield _load
    if loaded:
        port = loaded[0].manager_port
        cleanup_dfk()
        assert wait_until(lambda: not workers_of(port), 15), workers_of(port)


# ---- tests ---------------------------------------------------------------------------------
@pytest.mark.timeout(120)
def test_two_blocks_run_apps_and_no_worker_is_left_after_cleanup(load):
    ex = load(provider=LocalProvider(init_blocks=2, min_blocks=0, max_blocks=2))
    # no cores declared: each app takes a whole worker, so both blocks' workers are needed
    blocks = {f.result(timeout=90) for f in [block_of(1.0) for _ in range(6)]}
    assert blocks == {"0", "1"}, blocks
    assert ex.worker_command.startswith("work_queue_worker ")
    assert ex.worker_command.endswith(f" {ex.manager_port}")
    assert len(workers_of(ex.manager_port)) == 2
    port = ex.manager_port
    parsl.dfk().cleanup()
    assert wait_until(lambda: not workers_of(port), 15), "workers outlived cleanup()"


@pytest.mark.timeout(120)
def test_scale_out_under_load_and_in_when_idle(load):
    ex = load(provider=LocalProvider(init_blocks=0, min_blocks=0, max_blocks=2),
              config={"max_idletime": 1.0})
    assert wait_until(lambda: True, 0) and not workers_of(ex.manager_port)
    futures = [block_of(1.5) for _ in range(4)]
    # 4 apps, 1 slot per block: Parsl's strategy asks for max_blocks
    assert wait_until(lambda: len(workers_of(ex.manager_port)) == 2, 30)
    assert {f.result(timeout=60) for f in futures} <= {"0", "1"}
    # idle for longer than max_idletime: every block is scaled in
    assert wait_until(lambda: not workers_of(ex.manager_port), 30), workers_of(ex.manager_port)
    states = {s.state.name for s in ex.status_facade.values()}
    assert states == {"SCALED_IN"}, states
    # and out again for new work
    assert square(7).result(timeout=60) == 49


@pytest.mark.timeout(90)
def test_lost_blocks_fail_the_apps_the_parsl_way(load):
    load(provider=LocalProvider(init_blocks=1, max_blocks=1),
         worker_executable="/bin/false")  # every block dies at once
    with pytest.raises(BadStateException, match="EXIT CODE: 1"):
        square(2).result(timeout=60)


@pytest.mark.timeout(120)
def test_resource_specifications_and_every_future_resolves(load):
    ex = load(trace=True)
    spec = {"cores": 1, "memory": 300, "disk": 100, "gpus": 0, "priority": 5,
            "running_time_min": 1, "category": "sq"}
    assert square(4, parsl_resource_specification=spec).result(timeout=60) == 16
    assert ex.stats().loc["sq", "ok"] == 1
    with pytest.raises(InvalidResourceSpecification) as info:
        square(1, parsl_resource_specification={"cores": 1, "walltime": 5}).result(timeout=30)
    assert "walltime" in str(info.value) and "running_time_min" in str(info.value)
    # Parsl's rule with autolabel=False: cores, memory and disk together or none
    with pytest.raises(InvalidResourceSpecification, match="three resources"):
        square(1, parsl_resource_specification={"memory": 100}).result(timeout=30)
    # an app raising BaseException still resolves its future, with an ordinary exception
    for app in (interrupt, exits):
        error = app().exception(timeout=60)
        assert isinstance(error, Exception), repr(error)
    assert shell("exit 0").result(timeout=60) == 0


def test_unsupported_parameters_fail_at_construction():
    with pytest.raises(ValueError, match="coprocess=True cannot be honoured"):
        WorkQueueExecutor(coprocess=True)
    with pytest.raises(ValueError, match="'nopenope' is not installed"):
        WorkQueueExecutor(pack=True, extra_pkgs=["nopenope"])  # pack=True works (test_pack_parsl)
    with pytest.raises(ValueError, match="unknown predictor 'nope'"):
        WorkQueueExecutor(predictor="nope")
    from parsl.executors.workqueue.errors import WorkQueueFailure
    with pytest.raises(WorkQueueFailure, match="Could not find password file"):
        WorkQueueExecutor(project_password_file="/nonexistent/pw")
    for name in ("init_command", "worker_options"):
        with pytest.raises(ValueError, match=f"{name} must be a string"):
            WorkQueueExecutor(**{name: 5})
    with pytest.raises(ValueError, match="env must map variable names to strings"):
        WorkQueueExecutor(env={"A": None})
    assert WorkQueueExecutor(env={"OMP_NUM_THREADS": 1}).env == {"OMP_NUM_THREADS": "1"}


@pytest.mark.timeout(120)
def test_a_failed_start_releases_the_manager_and_its_port(tmp_path, monkeypatch):
    # Parsl does not shut down an executor whose start() raised: the manager it had
    # started kept the port, and the next parsl.load() on that port could not start
    import socket
    with socket.socket() as probe:
        probe.bind(("", 0))
        port = probe.getsockname()[1]

    def broken(self):
        raise RuntimeError("broken launch command")
    with monkeypatch.context() as patch:
        patch.setattr(WorkQueueExecutor, "_construct_worker_command", broken)
        ex = WorkQueueExecutor(label="first", port=port, provider=LocalProvider(init_blocks=0))
        with pytest.raises(RuntimeError, match="broken launch command"):
            parsl.load(Config(executors=[ex], run_dir=str(tmp_path / "runinfo")))
        cleanup_dfk()
    assert ex.lfm_executor is None
    again = WorkQueueExecutor(label="again", port=port, provider=LocalProvider(init_blocks=1, max_blocks=1))
    parsl.load(Config(executors=[again], run_dir=str(tmp_path / "runinfo2"), strategy_period=0.5))
    try:
        assert again.manager_port == port
        assert square(7).result(timeout=90) == 49
    finally:
        cleanup_dfk()


def test_parsl_defaults():
    import inspect

    from parsl.executors import WorkQueueExecutor as ParslWQ
    ours = inspect.signature(WorkQueueExecutor).parameters
    theirs = inspect.signature(ParslWQ).parameters
    assert list(ours)[:len(theirs)] == list(theirs)  # same order: positional use works too
    for name, parameter in theirs.items():
        if name in ("provider", "port"):
            continue  # a fresh LocalProvider per executor; Work Queue's 9123 (0 without ndcctools)
        assert ours[name].default == parameter.default, name
    assert ours["port"].default == 9123
    ex = WorkQueueExecutor()
    assert isinstance(ex.provider, LocalProvider) and ex.label == "WorkQueueExecutor"
    assert (ex.autolabel, ex.autocategory, ex.max_retries, ex.shared_fs) == (False, True, 1, False)


@pytest.mark.timeout(120)
def test_every_executor_defaults_to_the_auto_predictor(tmp_path):
    """The product's default predictor, "auto", in lfm's three executors: in
    their signatures, and in the predictor a started executor really uses."""
    import inspect

    from lfm.executors import AutolabelExecutor as LfmExecutor
    from lfm.parsl import AutolabelExecutor
    for cls in (LfmExecutor, AutolabelExecutor, WorkQueueExecutor):
        assert inspect.signature(cls).parameters["predictor"].default == "auto", cls
    assert WorkQueueExecutor().predictor == "auto"
    with LfmExecutor() as ex:
        assert ex.predictor.name == "auto"
    parsl_ex = AutolabelExecutor(label="auto-default")
    parsl.load(Config(executors=[parsl_ex], run_dir=str(tmp_path / "runinfo")))
    try:
        assert square(3).result(timeout=60) == 9
        assert parsl_ex.lfm_executor.predictor.name == "auto"
    finally:
        parsl.dfk().cleanup()
        parsl.clear()


def test_source_refused_and_autolabel_window_checked():
    # source=True: lfm has no source mode; refused, saying why (pack=True implies it, as in Parsl)
    with pytest.raises(ValueError, match="source=True cannot be honoured: lfm ships every app"):
        WorkQueueExecutor(source=True)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="autolabel_window must be an integer >= 1"):
            WorkQueueExecutor(autolabel=True, autolabel_window=bad)
    assert WorkQueueExecutor(autolabel=True, autolabel_window=5).predictor == "auto"


def test_category_window_admits_n_until_n_succeeded():
    from concurrent.futures import Future

    from lfm.parsl.window import CategoryWindow
    window, started = CategoryWindow(2), []

    def task(name):
        def start():
            started.append(name)
            future = Future()
            futures[name] = future
            return future
        return start
    futures: dict = {}
    for name in ("a1", "a2", "a3", "a4", "a5"):
        window.submit("a", task(name))
    window.submit("b", task("b1"))  # another category has a window of its own
    assert started == ["a1", "a2", "b1"] and window.waiting() == 3
    futures["a1"].set_exception(RuntimeError("app failed"))  # not a success, but frees its place
    assert started[-1] == "a3" and window.waiting() == 2
    futures["a2"].set_result(1)  # one success, and a3 runs for the second: no place
    assert started[-1] == "a3" and window.waiting() == 2
    futures["a3"].set_result(1)  # two successes: the window is open for good
    assert started[-2:] == ["a4", "a5"] and window.waiting() == 0
    window.submit("a", task("a6"))
    assert started[-1] == "a6"


@python_app
def hold_mb(mb, parsl_resource_specification={}):  # noqa: B006
    block = bytearray(mb * 2 ** 20)
    time.sleep(0.3)
    return len(block) // 2 ** 20


@pytest.mark.timeout(180)
def test_autolabel_window_labels_a_burst_from_the_first_tasks(load):
    """A burst of apps of a new category: with autolabel_window=1 only the
    first runs at the cold-start label; the others start after it succeeded
    and are labelled from what it used, so they are not all retried."""
    ex = load(autolabel=True, trace=True, worker_options="--cores=2 --memory=4000 --disk=4000")
    assert [f.result(timeout=150) for f in [hold_mb(300) for _ in range(6)]] == [300] * 6
    import json
    with open(ex.trace_path) as f:
        rows = sorted((json.loads(line) for line in f if line.strip()), key=lambda r: r["start"])
    first_ok = min(r["end"] for r in rows if r["status"] == "ok")
    # only the first task's attempts began before a task of the category succeeded
    assert len({r["task_id"] for r in rows if r["start"] < first_ok}) == 1, rows
    # the others were labelled from what it used (300 MB), not at the cold start
    cold = min(r["alloc_memory"] for r in rows)
    firsts = [r for r in rows if r["start"] >= first_ok and r["attempt"] == 1]
    assert len(firsts) == 5 and cold < 100, rows
    assert all(r["alloc_memory"] >= 300 for r in firsts), [(r["task_id"], r["alloc_memory"]) for r in rows]


@python_app
def parsl_imported():
    import sys
    return "parsl" in sys.modules


@python_app
def raises_value_error():
    raise ValueError("the app's own error")


@pytest.mark.timeout(120)
def test_python_apps_run_on_the_worker_without_importing_parsl(load):
    """Parsl's error wrapper imports Parsl on every call (half a second for
    each task's fresh process): a python app runs as its own function, and
    its exception still fails the AppFuture as the app raised it."""
    load()
    assert parsl_imported().result(timeout=90) is False
    with pytest.raises(ValueError, match="the app's own error"):
        raises_value_error().result(timeout=90)
    assert shell("exit 0").result(timeout=60) == 0  # bash apps keep Parsl's wrapper
