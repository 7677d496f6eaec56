"""``parsl_resource_specification``'s Work Queue options reach the Work Queue
task, seen from what Work Queue does with them on real workers launched by
``LocalProvider``: ``gpus`` (the worker gives the task that many of its
GPUs), ``priority`` (queued tasks run highest first, negatives included) and
``running_time_min`` (a task is not sent to a worker that will not live that
long); and bad values fail the app with Parsl's error, saying why."""
from __future__ import annotations

import os
import time

import pytest

parsl = pytest.importorskip("parsl", reason="Parsl is not installed (pip install 'lfm[parsl]')")

from parsl import Config, python_app  # noqa: E402
from parsl.executors.errors import InvalidResourceSpecification  # noqa: E402
from parsl.providers import LocalProvider  # noqa: E402

from parsl_helpers import WQ_AVAILABLE, WQ_MARKS, cleanup_dfk  # noqa: E402

pytestmark = WQ_MARKS

if WQ_AVAILABLE:
    from lfm.parsl import WorkQueueExecutor


@python_app
def gpus_given(parsl_resource_specification={}):  # noqa: B006 - Parsl's convention
    """The GPUs the worker gave the task (Work Queue sets CUDA_VISIBLE_DEVICES)."""
    return os.environ.get("CUDA_VISIBLE_DEVICES")


@python_app
def started(tag, parsl_resource_specification={}):  # noqa: B006
    """When the app started (s since the epoch), and its tag."""
    now = time.time()
    time.sleep(0.2)
    return now, tag


@pytest.fixture
def load(tmp_path):
    def _load(provider, **options):
        ex = WorkQueueExecutor(label="wqtask", port=0, provider=provider, **options)
        parsl.load(Config(executors=[ex], run_dir=str(tmp_path / "runinfo"), strategy_period=0.5))
        return ex

    yield _load
    cleanup_dfk()


@pytest.mark.timeout(120)
def test_gpus_are_a_count_the_worker_allocates(load):
    load(LocalProvider(init_blocks=1, max_blocks=1), worker_options="--gpus=2")
    whole = {"cores": 1, "memory": 200, "disk": 100}
    assert gpus_given(parsl_resource_specification={**whole, "gpus": 1}).result(timeout=90) == "0"
    two = gpus_given(parsl_resource_specification={**whole, "gpus": 2.0}).result(timeout=90)
    assert sorted(two.split(",")) == ["0", "1"]
    with pytest.raises(InvalidResourceSpecification, match="gpus must be a whole number"):
        gpus_given(parsl_resource_specification={**whole, "gpus": 0.5}).result(timeout=30)
    with pytest.raises(InvalidResourceSpecification, match="running_time_min must be >= 0"):
        gpus_given(parsl_resource_specification={"running_time_min": -1}).result(timeout=30)
    with pytest.raises(InvalidResourceSpecification, match="priority must be a number"):
        gpus_given(parsl_resource_specification={"priority": "high"}).result(timeout=30)


@pytest.mark.timeout(150)
def test_priority_orders_queued_tasks_negatives_included(load):
    # no worker until the strategy sees the queue: every task is queued before any runs
    load(LocalProvider(init_blocks=0, min_blocks=0, max_blocks=1))
    priorities = [0, 5, -3, 10, 2.5, -1]
    # no cores declared: each app takes the whole (only) worker, one at a time
    futures = [started(p, parsl_resource_specification={"priority": p}) for p in priorities]
    runs = sorted(f.result(timeout=120) for f in futures)
    assert [tag for _, tag in runs] == sorted(priorities, reverse=True)


@pytest.mark.timeout(120)
def test_running_time_min_keeps_a_task_off_a_worker_ending_too_soon(load):
    # the worker says it will be gone within 300 s
    load(LocalProvider(init_blocks=1, max_blocks=1), worker_options="--wall-time=300")
    spec = {"cores": 1, "memory": 200, "disk": 100}
    fits = started("fits", parsl_resource_specification={**spec, "running_time_min": 60})
    too_long = started("too long", parsl_resource_specification={**spec, "running_time_min": 3600})
    assert fits.result(timeout=90)[1] == "fits"
    time.sleep(3)  # the worker sits idle, yet the longer task is not sent to it
    assert not too_long.done() and not too_long.running()
