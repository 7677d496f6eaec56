"""Replay semantics and metrics on tiny hand-computed traces."""
from __future__ import annotations

import pandas as pd
import pytest

import predictors
from predictors import machine_size, replay


def tiny() -> pd.DataFrame:
    return pd.DataFrame({"category": ["a", "a", "a"], "memory": [100.0, 300.0, 200.0],
                         "wall_time": [10.0, 0.0, 5.0]})


def test_hand_computed_max_seen() -> None:
    # task 0: cold 1000 >= 100 ok; task 1 (wall 0 -> 1 s): 100 fails, 200 fails, 400 ok;
    # task 2: max seen 300 >= 200 ok.
    r = replay(tiny(), "max-seen")
    a = r.attempts
    assert a["allocation"].tolist() == [1000.0, 100.0, 200.0, 400.0, 300.0]
    assert a["ok"].tolist() == [True, False, False, True, True]
    assert a["attempt"].tolist() == [0, 0, 1, 2, 0]
    assert a["task"].tolist() == [0, 1, 1, 1, 2]
    assert a["wall_time"].tolist() == [10.0, 1.0, 1.0, 1.0, 5.0]
    s = r.summary.iloc[0]
    used, allocated = 100 * 10 + 300 * 1 + 200 * 5, 1000 * 10 + 100 + 200 + 400 + 300 * 5
    assert s["AE_time"] == pytest.approx(used / allocated)
    assert s["AE_count"] == pytest.approx(600 / 2000)
    assert s["waste"] == pytest.approx(allocated - used)
    assert s["waste_failed"] == pytest.approx(300)
    assert s["waste_internal"] == pytest.approx(allocated - used - 300)
    assert (s["retries"], s["tasks_retried"], s["tasks"], s["attempts"], s["tasks_unfinished"]) == (2, 1, 3, 5, 0)
    assert s["tasks_per_s"] > 0 and s["predictor"] == "max-seen" and s["seed"] == 0
    assert r.machine == {"memory": 1024.0}


def test_grouping_rounding_and_status() -> None:
    df = pd.DataFrame({"category": ["a", "b", "a", "b"], "memory": [10.2, 50.0, 10.0, 7.0],
                       "wall_time": [1.0, 1.0, 1.0, None], "status": ["ok", "ok", "ok", "error"]})
    per = replay(df, "max-seen")                      # the error row is not a task
    assert per.attempts["usage"].tolist() == [11.0, 50.0, 10.0]   # rounded up to whole MB
    assert per.summary.iloc[0]["retries"] == 0
    assert sorted(per.by_category["category"]) == ["a", "b"]
    one = replay(df, "max-seen", group_by=None)       # b's 50 raises a's max seen: no saving
    assert one.attempts["category"].unique().tolist() == ["all"]
    assert one.attempts["allocation"].tolist() == [1000.0, 11.0, 22.0, 44.0, 88.0, 50.0]
    assert replay(df, "max-seen", round_usage=False).attempts["usage"].iloc[0] == pytest.approx(10.2)


def test_oracle_whole_machine_and_seeds() -> None:
    df = predictors.synthetic("bimodal", 300, seed=1)
    r = replay(df, ["oracle", "whole-machine", "quantile"], seeds=[1, 2])
    s = r.summary.set_index(["predictor", "seed"])
    assert len(s) == 6
    assert s.loc[("oracle", 1), "AE_time"] == pytest.approx(1.0)
    assert s.loc[("oracle", 1), "retries"] == 0
    w = machine_size("memory", df["memory"])
    assert w == 4096.0 and r.machine["memory"] == w
    assert (r.attempts.query("predictor == 'whole-machine'")["allocation"] == w).all()
    expected = df["memory"].apply(lambda m: -(-m // 1)).sum() / (w * len(df))
    assert s.loc[("whole-machine", 2), "AE_count"] == pytest.approx(expected)
    assert s.loc[("quantile", 1), "AE_time"] == s.loc[("quantile", 2), "AE_time"]  # no randomness


def test_multi_resource_and_instances() -> None:
    df = pd.DataFrame({"category": ["a"] * 3, "memory": [100.0, 300.0, 50.0],
                       "cores": [1.0, 0.5, 3.0], "wall_time": [1.0, 1.0, 1.0]})
    p = predictors.create("max-seen", resources=("memory", "cores"))
    r = replay(df, p, resources=("memory", "cores"))
    a = r.attempts
    # task 1 exceeds memory only: memory doubles, cores stay; task 2 exceeds cores only:
    # cores double, memory stays.
    assert a["allocation_memory"].tolist() == [1000.0, 100.0, 200.0, 400.0, 300.0, 300.0, 300.0]
    assert a["allocation_cores"].tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 4.0]
    assert a["ok"].tolist() == [True, False, False, True, False, False, True]
    assert p.categories() == ["a"]                     # the instance itself was used
    s = r.summary.iloc[0]
    assert {"AE_time_memory", "AE_time_cores"} <= set(r.summary.columns)
    assert s["AE_time"] == s["AE_time_memory"]
    assert s["AE_count_cores"] == pytest.approx((1 + 0.5 + 3) / (1 + 1 + 1 + 1 + 1 + 2 + 4))
    assert (s["retries"], s["tasks_retried"]) == (4, 2)


def test_unfinished_when_usage_above_cap() -> None:
    df = pd.DataFrame({"category": ["a", "a"], "memory": [100.0, 5000.0], "wall_time": [1.0, 2.0]})
    r = replay(df, "max-seen", max_resources={"memory": 2048.0})
    s = r.summary.iloc[0]
    assert s["tasks_unfinished"] == 1
    assert r.attempts["allocation"].tolist() == [1000.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 2048.0]
    assert s["retries"] == 5                          # the last attempt at the cap is not a retry
    assert s["AE_time"] == pytest.approx(100 / (1000 + 2 * (100 + 200 + 400 + 800 + 1600 + 2048)))


def test_record_state() -> None:
    r = replay(predictors.synthetic("normal", 200), "min-waste", record_state=10)
    st = r.states
    assert set(st["key"]) >= {"allocation"} and st["task"].nunique() == 20


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="no column 'memory'"):
        replay(pd.DataFrame({"category": ["a"], "cores": [1.0]}), "max-seen")
    with pytest.raises(ValueError, match="cannot group by 'kind'"):
        replay(tiny(), "max-seen", group_by="kind")
    with pytest.raises(ValueError, match=r"row 1 \(0-based, header excluded\): memory usage"):
        replay(pd.DataFrame({"category": ["a", "a"], "memory": [1.0, "lots"]}), "max-seen")
    with pytest.raises(ValueError, match="unknown predictor 'nope'.*max-seen"):
        replay(tiny(), "nope")
    with pytest.raises(ValueError, match="unknown resource 'ram'"):
        replay(tiny(), "max-seen", resources=("ram",))
    with pytest.raises(TypeError, match="DataFrame"):
        replay(42, "max-seen")
    with pytest.raises(ValueError, match="retry_cost"):
        replay(tiny(), "max-seen", retry_cost=-1)
    with pytest.raises(ValueError, match="feature column 'size'"):
        replay(tiny(), "max-seen", features=["size"])
    with pytest.raises(ValueError, match="params must not set 'max_resources'.*max_resources argument"):
        replay(tiny(), "auto", params={"max_resources": {"memory": 4096.0}})
    with pytest.raises(ValueError, match="params must not set 'seed'.*seeds/seed"):
        replay(tiny(), "auto", params={"seed": 3})
    with pytest.raises(ValueError, match="seeds must name at least one seed"):
        replay(tiny(), "max-seen", seeds=[])
    with pytest.raises(ValueError, match="seeds must be integers >= 0, got -1"):
        replay(tiny(), "max-seen", seeds=[1, -1])
    for pool in ("x", 0, (2,), (2, -1.0), (2, float("inf"))):
        with pytest.raises(ValueError, match="pool must be a number of workers >= 1 or"):
            replay(tiny(), "max-seen", pool=pool)
    with pytest.raises(ValueError, match="record_state must be an integer >= 0"):
        replay(tiny(), "max-seen", record_state=-1)
    # one resource name alone is that resource, not its letters
    assert replay(tiny(), "max-seen", resources="memory").resources == ("memory",)


def test_paths_are_read_by_the_caller(tmp_path) -> None:
    # replay takes DataFrames only: reading files is lfm.trace's job (no package cycle)
    path = tmp_path / "t.csv"
    tiny().to_csv(path, index=False)
    with pytest.raises(TypeError, match="read_trace"):
        replay(path, "max-seen")
    from lfm.trace import read_trace
    assert replay(read_trace(path), "max-seen").summary.iloc[0]["retries"] == 2


def test_retry_cost_charges_failed_attempts() -> None:
    # as test_hand_computed_max_seen, with 30 s more at the allocation of each of the two failures
    s = replay(tiny(), "max-seen", retry_cost=30.0).summary.iloc[0]
    used, allocated = 100 * 10 + 300 * 1 + 200 * 5, 1000 * 10 + 100 + 200 + 400 + 300 * 5
    assert s["AE_time_plain"] == pytest.approx(used / allocated)
    assert s["AE_time"] == pytest.approx(used / (allocated + 30 * (100 + 200)))
    assert s["waste_failed"] == pytest.approx(31 * (100 + 200))
    assert "AE_time_plain" not in replay(tiny(), "max-seen").summary


class _Recorder(predictors.Predictor):
    """Records the features it is given (a real predictor: max-seen's policy)."""

    def __init__(self, *, resources=("memory",), max_resources=None, seed=0):
        super().__init__(resources=resources, max_resources=max_resources, seed=seed)
        self.seen = []

    def _new_state(self, resource):
        return _RecState(self)


class _RecState:
    def __init__(self, owner):
        self.owner, self.top = owner, 1000.0

    def first(self, features):
        self.owner.seen.append(("predict", dict(features)))
        return self.top

    def retry(self, previous, features):
        self.owner.seen.append(("retry", dict(features)))
        return previous * 2

    def observe(self, value, obs):
        self.owner.seen.append(("observe", dict(obs.features), obs.wall_time))
        self.top = value


def test_features_reach_predict_and_observe() -> None:
    df = pd.DataFrame({"category": ["a", "a", "a"], "memory": [100.0, 300.0, 50.0],
                       "wall_time": [10.0, 0.0, 2.0], "input_size": [5.0, None, 7.0], "cpu_time": [1.0, 2.0, 3.0]})
    rec = _Recorder()
    replay(df, rec)
    assert rec.seen == [("predict", {"input_size": 5.0}), ("observe", {"input_size": 5.0}, 10.0),
                        ("predict", {}), ("retry", {}), ("retry", {}), ("observe", {}, 1.0),
                        ("predict", {"input_size": 7.0}), ("observe", {"input_size": 7.0}, 2.0)]
    rec = _Recorder()
    replay(df, rec, features=["cpu_time"])        # explicit columns
    assert rec.seen[0] == ("predict", {"cpu_time": 1.0})
    rec = _Recorder()
    replay(df, rec, features=())                  # none
    assert rec.seen[0] == ("predict", {})


def test_machine_size() -> None:
    assert machine_size("memory", [5, 1024]) == 1024
    assert machine_size("memory", [1025]) == 2048
    assert machine_size("memory", [2048.0]) == 2048
    assert machine_size("memory", [3000]) == 4096
    assert machine_size("cores", [3.2]) == 4
    assert machine_size("disk", []) == 1024


def test_pool_makespan_by_hand() -> None:
    from predictors import pool_makespan
    # one worker of 10: task 0 tries 2 (fails after 2 s) then 6; task 1 takes 4 for 3 s.
    # t=0: both start (2 + 4 <= 10); t=2: the retry (6) goes first and fits (free 6);
    # t=3: task 1 ends; t=4: the retry ends -> makespan 4.
    sim = pool_makespan(task=[0, 0, 1], allocation=[2.0, 6.0, 4.0], usage=[5.0, 5.0, 4.0],
                        wall_time=[2.0, 2.0, 3.0], ok=[False, True, True], workers=1, size=10.0)
    assert sim["makespan"] == pytest.approx(4.0)
    assert sim["throughput"] == pytest.approx(2 / 4 * 3600)
    assert sim["utilization"] == pytest.approx((5 * 2 + 4 * 3) / (10 * 4))
    # first in, first out: a large head blocks the queue until it fits
    sim = pool_makespan(task=[0, 1, 2], allocation=[8.0, 8.0, 1.0], usage=[1.0, 1.0, 1.0],
                        wall_time=[5.0, 5.0, 1.0], ok=[True, True, True], workers=1, size=10.0)
    assert sim["makespan"] == pytest.approx(10.0)
    with pytest.raises(ValueError, match="does not fit a worker of size 4"):
        pool_makespan([0], [8.0], [1.0], [1.0], [True], workers=2, size=4.0)


def test_replay_with_pool() -> None:
    df = predictors.synthetic("normal", 400, seed=2)
    r = replay(df, ["oracle", "whole-machine"], pool=4)
    s = r.summary.set_index("predictor")
    # whole machine runs one task per worker: makespan = Σ wall / 4 at best
    assert s.loc["whole-machine", "makespan"] >= df["wall_time"].sum() / 4 - 1e-6
    assert s.loc["oracle", "makespan"] < s.loc["whole-machine", "makespan"]
    assert 0 < s.loc["oracle", "utilization"] <= 1


def test_empty_trace() -> None:
    r = replay(pd.DataFrame({"category": [], "memory": []}), ["max-seen", "oracle"])
    assert list(r.summary["predictor"]) == ["max-seen", "oracle"]
    assert (r.summary["tasks"] == 0).all() and r.summary["AE_time"].isna().all()
    assert r.attempts.empty


def test_unmeasured_tasks_are_left_out_with_a_warning_bad_values_stay_errors():
    import warnings

    import numpy as np
    import pandas as pd
    df = pd.DataFrame({"category": ["a"] * 6, "memory": [100, np.nan, 120, 110, np.nan, 130],
                       "wall_time": [10.0] * 6})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = predictors.replay(df, "max-seen")
    assert int(r.summary["tasks"].iloc[0]) == 4
    assert any("leaves out 2 of 6 tasks" in str(w.message) and "row 1" in str(w.message)
               for w in caught), [str(w.message) for w in caught]
    for bad in (-5.0, np.inf):
        with pytest.raises(ValueError, match="finite number >= 0"):
            predictors.replay(df.assign(memory=[100, bad, 1, 1, 1, 1]), "max-seen")
    with pytest.raises(ValueError, match="all 6 are empty or NaN.*nothing to replay"):
        predictors.replay(df.assign(memory=np.nan), "max-seen")
    with pytest.raises(ValueError, match="no task of the trace succeeded .*'error'.*nothing to replay"):
        predictors.replay(df.assign(status="error"), "max-seen")
