"""Parsl's documented ``WorkQueueExecutor`` configurations, exactly as Parsl's
documentation prints them with only the import changed, run real apps on
real workers that the default ``LocalProvider`` launches; and no worker
outlives ``cleanup()``, even one that sleeps through SIGTERM while it waits
for a catalog that cannot be reached.

``project_name=`` needs a catalog: the fixture starts cctools' own
``catalog_server`` on a free port of this host and points the manager and the
workers at it with ``CATALOG_HOST``/``CATALOG_PORT`` (both inherit this
process's environment). Both documented configurations listen on Work Queue's
default port 9123: the tests wait for it to be free and fail (never skip)
when another program holds it.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest

parsl = pytest.importorskip("parsl", reason="Parsl is not installed (pip install 'lfm[parsl]')")

from parsl import Config, bash_app, python_app  # noqa: E402
from parsl.data_provider.files import File  # noqa: E402

from parsl_helpers import WQ_AVAILABLE, WQ_MARKS, cleanup_dfk, wait_until, worker_pids  # noqa: E402

pytestmark = WQ_MARKS

if WQ_AVAILABLE:
    from lfm.parsl import WorkQueueExecutor  # the one changed line: was parsl.executors

DOC_PORT = 9123


@python_app
def square(x):
    return x * x


@python_app
def shout(inputs=(), outputs=()):
    with open(inputs[0].filepath) as src, open(outputs[0].filepath, "w") as dst:
        dst.write(src.read().upper())
    return os.getcwd()


@bash_app
def echo(word, stdout=None):
    return f"echo {word}"


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Work Queue binds it
        try:
            s.bind(("", port))
        except OSError:
            return False
    return True


@pytest.fixture
def doc_port():
    """Work Queue's default port, which the documented configurations use:
    waited for (a previous test's manager may still be closing), else a failure."""
    assert wait_until(lambda: port_is_free(DOC_PORT), 30, 0.5), (
        f"port {DOC_PORT} (Work Queue's default, fixed by Parsl's documented configurations) "
        "is held by another program; free it to run these tests")
    return DOC_PORT


@pytest.fixture
def catalog(tmp_path, monkeypatch):
    """A private cctools catalog_server on a free port of 127.0.0.1;
    CATALOG_HOST/CATALOG_PORT point this process (and so the manager and the
    workers, which inherit its environment) at it."""
    assert shutil.which("catalog_server"), "catalog_server not found (apt-get install coop-computing-tools)"
    with socket.socket() as s:  # a free port (catalog_server -Z always tries 1024 first,
        s.bind(("127.0.0.1", 0))  # where Work Queue managers on port 0 also start)
        port = s.getsockname()[1]
    # -U/-u: no update to the public catalog (none reachable in CI)
    proc = subprocess.Popen(["catalog_server", "-p", str(port), "-I", "127.0.0.1", "-S",
                             "-U", "3600", "-u", "127.0.0.1", "-o", str(tmp_path / "catalog.log")],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        def listening() -> bool:
            with socket.socket() as c:
                return c.connect_ex(("127.0.0.1", port)) == 0
        log = tmp_path / "catalog.log"
        assert wait_until(listening, 15), (
            f"catalog_server is not listening on {port} (exit status {proc.poll()}): "
            + (log.read_text(errors="replace")[-2000:] if log.exists() else "no log"))
        monkeypatch.setenv("CATALOG_HOST", "127.0.0.1")
        monkeypatch.setenv("CATALOG_PORT", str(port))
        yield port
    finally:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in a fresh directory: Parsl's runinfo and the apps' files land there."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    cleanup_dfk()


@pytest.mark.timeout(180)
def test_documented_project_name_configuration(catalog, doc_port, in_tmp):
    config = Config(
        executors=[
            WorkQueueExecutor(
                label="wq-parsl-app",
                port=9123,
                project_name="wq-parsl-app",
                shared_fs=False,
                full_debug=True,
            )
        ]
    )
    parsl.load(config)
    (in_tmp / "in.txt").write_text("staged")
    ex = parsl.dfk().executors["wq-parsl-app"]
    # the workers find the manager through the catalog, by name
    assert ex.worker_command.endswith("-M wq-parsl-app") and ex.manager_port == 9123
    # all at once: each alone waits ~2 s on Work Queue
    squares = [square(i) for i in range(4)]
    shouted = shout(inputs=[File("in.txt")], outputs=[File("out.txt")])
    echoed = echo("hi", stdout="echo.out")
    assert [f.result(timeout=120) for f in squares] == [0, 1, 4, 9]
    cwd = shouted.result(timeout=60)
    assert (in_tmp / "out.txt").read_text() == "STAGED" and cwd != str(in_tmp)
    assert echoed.result(timeout=60) == 0
    assert (in_tmp / "echo.out").read_text() == "hi\n"
    # full_debug=True: Work Queue's debug log in the run_dir, as Parsl writes it
    debug_log = next(in_tmp.glob("runinfo/*/wq-parsl-app/debug_log"))
    assert "wq-parsl-app" in debug_log.read_text(errors="replace")
    parsl.dfk().cleanup()
    parsl.clear()
    assert wait_until(lambda: not worker_pids("wq-parsl-app"), 15)


@pytest.mark.timeout(180)
def test_documented_autolabel_configuration(doc_port, in_tmp):
    config = Config(executors=[WorkQueueExecutor(autolabel=True, autocategory=True)])
    parsl.load(config)
    ex = parsl.dfk().executors["WorkQueueExecutor"]
    assert ex.worker_command.endswith(f" {socket.gethostname()} 9123")
    squares = [square(i) for i in range(6)]  # at once: each alone waits ~2 s on Work Queue
    assert [f.result(timeout=120) for f in squares] == [0, 1, 4, 9, 16, 25]
    stats = ex.stats()
    # autocategory: the app's name; autolabel: lfm's predictor labelled every task
    assert stats.loc["square", "ok"] == 6
    assert ex.lfm_executor.autolabel and ex.lfm_executor.predictor.name == "auto"
    parsl.dfk().cleanup()
    parsl.clear()
    assert wait_until(lambda: not worker_pids(str(DOC_PORT)), 15)


def _asleep(pid: int) -> bool:
    """The process waits in a (clock_)nanosleep: the kernel's wait channel."""
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return "nanosleep" in f.read()
    except OSError:
        return False


@pytest.mark.timeout(120)
def test_cleanup_kills_workers_that_sleep_through_sigterm(tmp_path, monkeypatch, in_tmp):
    """A ``-M`` worker that cannot reach its catalog sleeps between attempts
    and ignores the SIGTERM of LocalProvider.cancel: cleanup() still leaves none."""
    from lfm.parsl.blocks import GRACE
    with socket.socket() as s:  # a port nothing listens on: the catalog is unreachable
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    monkeypatch.setenv("CATALOG_HOST", "127.0.0.1")
    monkeypatch.setenv("CATALOG_PORT", str(dead))
    name = f"lfm-nocatalog-{uuid.uuid4().hex[:8]}"
    parsl.load(Config(executors=[WorkQueueExecutor(label="nocat", port=0, project_name=name)],
                      strategy_period=0.5))
    assert wait_until(lambda: worker_pids(name), 30), "the block's worker never started"
    # let it fail its first catalog queries and go to sleep (where SIGTERM is ignored)
    assert wait_until(lambda: any(_asleep(pid) for pid in worker_pids(name)), 20, 0.2), \
        "the block's worker never went to sleep between catalog queries"
    assert worker_pids(name)
    started = time.time()
    parsl.dfk().cleanup()
    parsl.clear()
    took = time.time() - started
    assert worker_pids(name) == [], "a worker outlived cleanup()"
    assert took < GRACE + 15, took
