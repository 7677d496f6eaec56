"""``lfm.parsl.WorkQueueExecutor`` with Parsl's ``SlurmProvider`` against a
real single-node Slurm (started by the fixture, see tests/slurm.py): the
workers are Slurm jobs submitted with ``sbatch``, apps run on them (staged
files included), and cleanup cancels the jobs."""
from __future__ import annotations

import os
import time

import pytest

parsl = pytest.importorskip("parsl", reason="Parsl is not installed (pip install 'lfm[parsl]')")

from parsl import Config, python_app  # noqa: E402
from parsl.data_provider.files import File  # noqa: E402
from parsl.launchers import SingleNodeLauncher  # noqa: E402

from lfm.executors import work_queue_available  # noqa: E402
from slurm import single_node_slurm, why_not  # noqa: E402

WQ_AVAILABLE, WQ_WHY = work_queue_available()
SLURM_WHY = why_not()
pytestmark = [pytest.mark.workqueue,
              pytest.mark.skipif(not WQ_AVAILABLE, reason=f"real Work Queue is not installed: {WQ_WHY}"),
              pytest.mark.skipif(SLURM_WHY is not None, reason=f"no single-node Slurm: {SLURM_WHY}")]


@python_app
def job_of(inputs=(), outputs=()):
    """The Slurm job and Parsl block the app's worker belongs to; copies its input."""
    if inputs:
        with open(inputs[0].filepath) as src, open(outputs[0].filepath, "w") as dst:
            dst.write(src.read()[::-1])
    return os.environ.get("SLURM_JOB_ID"), os.environ.get("PARSL_WORKER_BLOCK_ID")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    with single_node_slurm(str(tmp_path_factory.mktemp("slurm"))) as cluster:
        yield cluster


def _workers(port: int) -> list:
    import psutil
    return [p for p in psutil.process_iter(["cmdline"])
            if (p.info["cmdline"] or [""])[0].endswith("work_queue_worker")
            and str(port) in p.info["cmdline"]]


@pytest.mark.timeout(240)
def test_apps_run_on_workers_slurm_started(slurm, tmp_path, monkeypatch):
    from parsl.providers import SlurmProvider

    from lfm.parsl import WorkQueueExecutor
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("mrulS")
    provider = SlurmProvider(partition=slurm.partition, nodes_per_block=1, init_blocks=1,
                             min_blocks=0, max_blocks=1, walltime="00:10:00", exclusive=False,
                             launcher=SingleNodeLauncher(), cmd_timeout=30)
    ex = WorkQueueExecutor(label="slurmwq", port=0, provider=provider, autolabel=True,
                           worker_options="--timeout=120")
    parsl.load(Config(executors=[ex], run_dir=str(tmp_path / "runinfo"), strategy_period=0.5))
    try:
        futures = [job_of() for _ in range(3)]
        futures.append(job_of(inputs=[File("in.txt")], outputs=[File("out.txt")]))
        results = [f.result(timeout=150) for f in futures]
        job_id = ex.blocks_to_job_id["0"]
        assert set(results) == {(str(job_id), "0")}, (results, job_id)
        assert (tmp_path / "out.txt").read_text() == "Slurm"
        assert slurm.jobs() == [str(job_id)]  # the block is a running Slurm job
        # the block's batch script is Parsl's, submitted with sbatch, running our worker
        script = next(p for p in (tmp_path / "runinfo").rglob("parsl.slurmwq.block-0.*")
                      if p.suffix not in (".stdout", ".stderr"))
        assert "work_queue_worker" in script.read_text() and "#SBATCH" in script.read_text()
        port = ex.manager_port
    finally:
        parsl.dfk().cleanup()
        parsl.clear()
    deadline = time.time() + 30
    while (slurm.jobs() or _workers(port)) and time.time() < deadline:
        time.sleep(0.5)
    assert slurm.jobs() == [] and _workers(port) == [], "cleanup() left the Slurm job running"


@pytest.mark.timeout(300)
def test_readme_slurm_program_runs(slurm, tmp_path):
    """The README's complete Slurm program runs as printed, with only its
    partition changed to this cluster's, and leaves no job behind."""
    import re
    import subprocess
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(repo, "README.md"), encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    (program,) = [b for b in blocks if "SlurmProvider(" in b and "parsl.load(" in b]
    assert program.count('partition="debug"') == 1
    script = tmp_path / "slurm_workflow.py"
    script.write_text(program.replace('partition="debug"', f'partition="{slurm.partition}"'))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "total MB: 950 counted" in done.stdout, done.stdout
    assert (tmp_path / "count.txt").read_text() == "6"
    deadline = time.time() + 30
    while slurm.jobs() and time.time() < deadline:
        time.sleep(0.5)
    assert slurm.jobs() == [], "the program's cleanup() left its Slurm job running"
