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
                           capacity={"cores": 2, "memory": 2000, "disk": 2000}) as ex:
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
