"""Files staged by ``lfm.parsl.WorkQueueExecutor`` as Parsl's Work Queue
executor stages them, with real workers (launched by ``LocalProvider``) whose
working directory is elsewhere than the submitting process's: ``inputs=``,
``outputs=``, ``File`` arguments, bash apps' ``stdout``/``stderr``,
``use_cache``, ``shared_fs=True``, data futures between apps."""
from __future__ import annotations

import os

import pytest

parsl = pytest.importorskip("parsl", reason="Parsl is not installed (pip install 'lfm[parsl]')")

from parsl import Config, bash_app, python_app  # noqa: E402
from parsl.data_provider.files import File  # noqa: E402
from parsl.providers import LocalProvider  # noqa: E402

from parsl_helpers import WQ_AVAILABLE, WQ_MARKS, cleanup_dfk  # noqa: E402

pytestmark = [*WQ_MARKS, pytest.mark.timeout(150)]

if WQ_AVAILABLE:
    from lfm.parsl import WorkQueueExecutor
    from lfm.parsl.staging import Stager


@python_app
def upper(inputs=(), outputs=()):
    """Reads its input, writes it upper-cased; returns where it ran and what it saw."""
    with open(inputs[0].filepath) as f:
        text = f.read()
    with open(outputs[0].filepath, "w") as f:
        f.write(text.upper())
    return os.getcwd(), inputs[0].filepath, outputs[0].filepath


@python_app
def read_args(first, second=None):
    """File positional and keyword arguments are inputs."""
    return [open(f.filepath).read() for f in (first, second)]


@bash_app
def talk(stdout=None, stderr=None):
    return "echo to-out; echo to-err >&2; pwd"


@python_app
def where(inputs=()):
    return os.getcwd(), [f.filepath for f in inputs]


@pytest.fixture
def submit_dir(tmp_path, monkeypatch):
    """The submitting side's working directory (relative paths resolve here)."""
    here = tmp_path / "submit"
    here.mkdir()
    monkeypatch.chdir(here)
    return here


@pytest.fixture
def load(tmp_path, submit_dir):
    """A DataFlowKernel with one executor whose single worker works in
    ``tmp_path / "worker"``, not in the submit directory."""
    workdir = tmp_path / "worker"
    workdir.mkdir()

    def _load(**options):
        ex = WorkQueueExecutor(label="stage", port=0, worker_options=f"--workdir {workdir}",
                               provider=LocalProvider(init_blocks=1, max_blocks=1), **options)
        parsl.load(Config(executors=[ex], run_dir=str(tmp_path / "runinfo"), strategy_period=0.5))
        return ex

    yield _load
    cleanup_dfk()


def test_inputs_and_outputs_travel_to_and_from_a_worker_elsewhere(load, submit_dir, tmp_path):
    load()
    (submit_dir / "in.txt").write_text("hello")
    future = upper(inputs=[File("in.txt")], outputs=[File("out.txt")])
    cwd, seen_in, seen_out = future.result(timeout=90)
    # the app ran in its sandbox under the worker's directory, and saw relative names there
    assert cwd.startswith(str(tmp_path / "worker")), cwd
    assert (seen_in, seen_out) == ("in.txt", "out.txt")
    # out.txt is where Parsl puts it: relative to the submitting side's directory
    assert (submit_dir / "out.txt").read_text() == "HELLO"
    assert future.outputs[0].result(timeout=30).filepath == "out.txt"
    # a data future feeds the next app, which stages the output as its input
    again = upper(inputs=[future.outputs[0]], outputs=[File("again.txt")])
    again.result(timeout=90)
    assert (submit_dir / "again.txt").read_text() == "HELLO"


def test_file_arguments_stream_outputs_and_paths_above_the_submit_dir(load, submit_dir):
    load()
    (submit_dir / "a.txt").write_text("A")
    (submit_dir.parent / "up.txt").write_text("UP")  # ../up.txt cannot be a sandbox name
    # both at once: each alone waits ~2 s on Work Queue
    read = read_args(File("a.txt"), second=File("../up.txt"))
    talked = talk(stdout="talk.out", stderr=("talk.err", "w"))
    assert read.result(timeout=90) == ["A", "UP"]
    assert talked.result(timeout=90) == 0
    assert (submit_dir / "talk.out").read_text().splitlines()[0] == "to-out"
    assert (submit_dir / "talk.err").read_text().strip().endswith("to-err")


def test_shared_fs_stages_nothing_and_gives_absolute_paths(load, submit_dir, tmp_path):
    load(shared_fs=True)
    (submit_dir / "in.txt").write_text("x")
    cwd, paths = where(inputs=[File("in.txt"), File(str(tmp_path / "abs.txt"))]).result(timeout=90)
    assert cwd.startswith(str(tmp_path / "worker"))
    assert paths == [str(submit_dir / "in.txt"), str(tmp_path / "abs.txt")]


def test_what_is_staged_and_cached(submit_dir):
    """Parsl's rules: relative local files are staged, absolute paths and URLs
    no staging provider fetched are not; with use_cache a file is cached from
    its second use on (as an input or an output), stdout never."""
    stager = Stager(use_cache=True)
    call = ((File("a.txt"), File("/shared/b.txt"), 3),
            {"inputs": [File("c.txt"), File("https://example.org/d.txt")], "outputs": [File("e.txt")],
             "stdout": "log.txt", "stderr": None, "n": 1})
    staged = stager.stage(*call)
    assert staged.inputs == [(str(submit_dir / "a.txt"), "a.txt", False),
                             (str(submit_dir / "c.txt"), "c.txt", False)]
    assert staged.outputs == [(str(submit_dir / "e.txt"), "e.txt", False),
                              (str(submit_dir / "log.txt"), "log.txt", False)]
    again = stager.stage(*call)
    assert [cache for _, _, cache in again.inputs] == [True, True]
    assert again.outputs[0][2] is True and again.outputs[1][2] is False  # stdout: never cached
    # an earlier app's output is cached on its first use as an input (a data future)
    assert stager.stage((), {"inputs": [File("e.txt")]}).inputs[0][2] is True
    assert Stager().stage((File("a.txt"),), {}).inputs[0][2] is False  # use_cache=False
    assert Stager(shared_fs=True).stage((File("a.txt"),), {"stdout": "o"}).inputs == []
    with pytest.raises(ValueError, match="names lfm's runner uses"):
        Stager().stage((File("in.pkl"),), {})


def test_use_cache_keeps_inputs_on_the_worker(load, submit_dir, tmp_path):
    load(use_cache=True)
    (submit_dir / "big.txt").write_text("cached content")
    for _ in range(2):
        upper(inputs=[File("big.txt")], outputs=[File("o.txt")]).result(timeout=90)
    cached = [os.path.join(d, f) for d, _, files in os.walk(tmp_path / "worker") for f in files
              if "/cache" in d]
    assert any(open(p, errors="replace").read() == "cached content" for p in cached), cached


@python_app
def read_first(inputs=()):
    """The app's view of its first input: its path there and its content."""
    with open(inputs[0].filepath) as f:
        return os.getcwd(), inputs[0].filepath, f.read()


@pytest.fixture
def web(tmp_path):
    """A local HTTP server (127.0.0.1, a free port) serving ``tmp_path / "web"``."""
    import functools
    import http.server
    import threading
    root = tmp_path / "web"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_storage_access_in_task_staging_and_noop(load, submit_dir, tmp_path, web):
    """Non-default storage_access, as in Parsl: NoOpFileStaging leaves local
    files to the executor (staged to the worker), HTTPInTaskStaging fetches a
    URL inside the task, on the worker, into the app's sandbox."""
    from parsl.data_provider.file_noop import NoOpFileStaging
    from parsl.data_provider.ftp import FTPInTaskStaging
    from parsl.data_provider.http import HTTPInTaskStaging
    root, url = web
    ex = load(storage_access=[NoOpFileStaging(), FTPInTaskStaging(), HTTPInTaskStaging()])
    assert [type(s).__name__ for s in ex.storage_access] == [
        "NoOpFileStaging", "FTPInTaskStaging", "HTTPInTaskStaging"]
    (submit_dir / "local.txt").write_text("from the submit side")
    (root / "remote.txt").write_text("from the web")
    cwd, path, text = read_first(inputs=[File("local.txt")]).result(timeout=90)
    assert cwd.startswith(str(tmp_path / "worker")) and (path, text) == ("local.txt", "from the submit side")
    cwd, path, text = read_first(inputs=[File(f"{url}/remote.txt")]).result(timeout=90)
    # fetched by the task itself, in its sandbox on the worker: nothing lands on the submit side
    assert cwd.startswith(str(tmp_path / "worker")) and text == "from the web"
    assert os.path.basename(path) == "remote.txt" and not (submit_dir / "remote.txt").exists()
