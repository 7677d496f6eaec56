"""Cores mean what the backend granted (issue 10 §2): stats and traces charge
the allocation the backend really gave an attempt. Work Queue grants whole
cores, so a 0.3-core label occupies (and is charged) a whole core there; the
local backend packs fractional labels as they are."""
from __future__ import annotations

import json

import pytest

import fault_calls as calls
from doubling import Doubling
from lfm.executors import AutolabelExecutor, work_queue_available

WQ_AVAILABLE, WQ_WHY = work_queue_available()


def _rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.mark.timeout(120)
def test_local_packs_fractional_cores_and_charges_them(tmp_path):
    trace = tmp_path / "trace.jsonl"
    mark = str(tmp_path / "pids")
    with AutolabelExecutor(predictor=Doubling(resources=("cores", "memory")), trace=trace,
                           capacity={"cores": 2, "memory": 8000, "disk": 8000}) as ex:
        # (memory for six burst-floor labels of 1000 MB: see BURST_FLOOR)
        tenth = ex.options(category="fraction", resources={"cores": 0.3})
        # six 0.3-core calls fit 2 cores: they all run at the same time
        futures = [tenth.submit(calls.together, mark, 6, 30) for _ in range(6)]
        assert [f.result(timeout=60) for f in futures] == [6] * 6
        stats = ex.stats()
    rows = _rows(trace)
    assert {(r["alloc_cores"], r["granted_cores"]) for r in rows} == {(0.3, 0.3)}
    row = stats.loc["fraction"]
    assert row["alloc_cores_s"] == pytest.approx(0.3 * row["wall_time_s"])


@pytest.mark.workqueue
@pytest.mark.timeout(180)
@pytest.mark.skipif(not WQ_AVAILABLE, reason=f"real Work Queue is not installed: {WQ_WHY}")
def test_work_queue_grants_and_charges_whole_cores(tmp_path):
    trace = tmp_path / "trace.jsonl"
    mark = str(tmp_path / "pids")
    with AutolabelExecutor(backend="workqueue", predictor=Doubling(resources=("cores", "memory")),
                           trace=trace, verbose=False,
                           workers=[{"cores": 2, "memory": 1000, "disk": 2000}]) as ex:
        tenth = ex.options(category="fraction", resources={"cores": 0.3})
        assert [f.result(timeout=90) for f in [tenth.submit(calls.returns, mark, i)
                                               for i in range(3)]] == [0, 1, 2]
        stats = ex.stats()
    rows = _rows(trace)
    # the label stays what lfm chose; the worker granted (and lfm charges) one core
    assert {(r["alloc_cores"], r["granted_cores"]) for r in rows} == {(0.3, 1.0)}
    row = stats.loc["fraction"]
    assert row["alloc_cores_s"] == pytest.approx(1.0 * row["wall_time_s"])
    assert row["alloc_memory_s"] == pytest.approx(
        sum(r["granted_memory"] * r["wall_time"] for r in rows))
    assert 0 <= row["ae_cores"] <= 1


@pytest.mark.workqueue
@pytest.mark.timeout(180)
@pytest.mark.skipif(not WQ_AVAILABLE, reason=f"real Work Queue is not installed: {WQ_WHY}")
def test_work_queue_enforces_memory_at_the_whole_mb_it_grants(tmp_path):
    """A worker grants memory in whole MB: a call runs within (and is held to)
    ceil(label), so a call a fraction of an MB over a fractional label is not
    killed for it; and a retry's label grows in whole MB granted."""
    from lfm import ResourceExhaustion
    mark = str(tmp_path / "pids")
    with AutolabelExecutor(backend="workqueue", predictor=Doubling(), autolabel=False,
                           verbose=False, workers=[{"cores": 1, "memory": 1000, "disk": 2000}]) as ex:
        hard = ex.options(category="hard", resources={"memory": 100.4})
        with pytest.raises(ResourceExhaustion) as info:
            hard.submit(calls.hold, mark, 200).result(timeout=90)
    assert info.value.exceeded == {"memory": 101.0}, info.value.exceeded
    assert "label 101" in str(info.value)


class _Creeping(Doubling):
    """Grows a retry by half an MB only: smaller than Work Queue's grain."""

    def _new_state(self, resource):
        state = super()._new_state(resource)
        state.retry = lambda previous, features=None: previous + 0.5
        return state


@pytest.mark.workqueue
@pytest.mark.timeout(240)
@pytest.mark.skipif(not WQ_AVAILABLE, reason=f"real Work Queue is not installed: {WQ_WHY}")
def test_a_retry_label_grows_in_what_the_worker_grants(tmp_path):
    """The predictor is told the allocation the attempt really had (101 MB for
    a 100.2 MB label), so a retry half an MB larger is a whole MB larger on
    the worker (it would otherwise be granted the same 101 MB and stop)."""
    from lfm import ResourceExhaustion
    mark = str(tmp_path / "pids")
    with AutolabelExecutor(backend="workqueue", predictor=_Creeping(first=100.2), max_retries=3,
                           verbose=False, workers=[{"cores": 1, "memory": 1000, "disk": 2000}]) as ex:
        with pytest.raises(ResourceExhaustion) as info:
            ex.submit(calls.hold, mark, 200).result(timeout=180)
    labels = [a["label"]["memory"] for a in info.value.attempts]
    granted = [a["granted"]["memory"] for a in info.value.attempts]
    assert labels == [100.2, 101.5, 102.5, 103.5], info.value.attempts
    assert granted == [101.0, 102.0, 103.0, 104.0], info.value.attempts


def test_work_queue_allocation_rounds_labels_to_what_a_worker_grants():
    from lfm.executors.workqueue import work_queue_allocation
    asked = work_queue_allocation({"cores": 0.3, "memory": 11.98, "disk": 0.01})
    assert asked == {"cores": 1.0, "memory": 12.0, "disk": 1.0}
    # a start-up blip above a whole core does not take a second core; more does
    assert [work_queue_allocation({"cores": c})["cores"] for c in (1.0, 1.2, 1.25, 1.3, 2.6)] == \
        [1.0, 1.0, 1.0, 2.0, 3.0]
