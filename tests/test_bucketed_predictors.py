"""Bucket predictors and ``adaptive``: cold start, retry semantics, determinism,
and agreement with the reference replay numbers on a public trace."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

import predictors
from predictors.bucketed import next_step
from predictors.ladders import EXPERTS, ladder_charge

BUCKET_NAMES = ["greedy", "exhaustive", "greedy-det", "exhaustive-det", "kmeans", "quantile-buckets", "quantized",
                "quantized-10"]


def feed(p, category, values):
    for v in values:
        p.observe(category, {"memory": float(v)})


@pytest.mark.parametrize("name", BUCKET_NAMES)
def test_cold_start_uses_default_and_doubles(name):
    p = predictors.create(name, seed=3)
    for i in range(10):
        a = p.predict("c")
        assert a == {"memory": 1000.0}
        a = p.predict("c", previous=a, exceeded={"memory"})
        assert a == {"memory": 2000.0}
        assert p.predict("c", previous=a, exceeded={"memory"}) == {"memory": 4000.0}
        p.observe("c", {"memory": 100.0 + i})
    # from the 11th task on, allocations come from the buckets of the history
    assert p.predict("c")["memory"] <= 109.0
    # another category is still cold
    assert p.predict("other") == {"memory": 1000.0}


def test_next_step_is_the_next_power_of_the_rate_above_previous():
    assert next_step(1000, 1000, 2) == 2000
    assert next_step(1500, 1000, 2) == 2000
    assert next_step(2000, 1000, 2) == 4000
    assert next_step(300, 1000, 2) == 500  # k may be negative, as in the reference


@pytest.mark.parametrize("name", ["greedy-det", "exhaustive-det"])
def test_deterministic_retry_climbs_the_buckets(name):
    p = predictors.create(name)
    feed(p, "c", [100] * 10 + [1000] * 10 + [100] * 10)
    buckets = [u for u, _ in p.describe("c")["memory"]["buckets"]]
    assert buckets == [100.0, 1000.0]
    a = p.predict("c")
    assert a["memory"] == 100.0
    a = p.predict("c", previous=a, exceeded={"memory"})
    assert a["memory"] == 1000.0
    # past the top bucket: the next step of the default ladder
    assert p.predict("c", previous=a, exceeded={"memory"})["memory"] == 2000.0


@pytest.mark.parametrize("name", ["greedy", "exhaustive"])
def test_probabilistic_draws_follow_bucket_probabilities(name):
    p = predictors.create(name, seed=0)
    feed(p, "c", [100] * 20 + [1000] * 20)
    (lo, p_lo), (hi, _) = p.describe("c")["memory"]["buckets"]
    draws = [p.predict("c")["memory"] for _ in range(2000)]
    assert set(draws) == {lo, hi}
    assert np.mean(np.asarray(draws) == lo) == pytest.approx(p_lo, abs=0.05)
    # after a failure in the low bucket only buckets above it remain
    assert {p.predict("c", previous={"memory": lo}, exceeded={"memory"})["memory"] for _ in range(50)} == {hi}


@pytest.mark.parametrize("name", BUCKET_NAMES + ["adaptive"])
def test_same_seed_same_predictions_and_pickle_keeps_state(name):
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(300, 30, 60), rng.normal(1500, 100, 60)]).round()
    rng.shuffle(values)

    def run(p, vals):
        out = []
        for v in vals:
            a = p.predict("c")
            while a["memory"] < v:
                a = p.predict("c", previous=a, exceeded={"memory"})
                out.append(a["memory"])
            out.append(a["memory"])
            p.observe("c", {"memory": float(v), "wall_time": 1.0})
        return out

    one, two = predictors.create(name, seed=7), predictors.create(name, seed=7)
    assert run(one, values[:80]) == run(two, values[:80])
    clone = pickle.loads(pickle.dumps(one))
    assert run(clone, values[80:]) == run(one, values[80:])


def test_probabilistic_seeds_differ():
    values = [100.0] * 20 + [1000.0] * 20
    draws = []
    for seed in (1, 2):
        p = predictors.create("greedy", seed=seed)
        feed(p, "c", values)
        draws.append([p.predict("c")["memory"] for _ in range(30)])
    assert draws[0] != draws[1]


def test_repr_shows_parameters():
    text = repr(predictors.create("exhaustive", max_buckets=5))
    assert "max_buckets=5" in text and "num_sampling_points=10" in text and "recompute_growth=0.01" in text


@pytest.mark.parametrize("name", BUCKET_NAMES + ["adaptive"])
def test_bad_parameters_are_value_errors(name):
    p = predictors.create(name, recompute_growth=2.0)   # stored as given, checked at first use
    with pytest.raises(ValueError, match="recompute_growth"):
        p.predict("a")


# ---- adaptive ---------------------------------------------------------------------

def test_adaptive_cold_start_probes_then_uses_pooled_history():
    p = predictors.create("adaptive")
    a = p.predict("first")
    assert a == {"memory": 62.5}
    a = p.predict("first", previous=a, exceeded={"memory"})
    assert a == {"memory": 125.0}
    p.observe("first", {"memory": 100.0, "wall_time": 10.0})
    assert p.predict("first") == {"memory": 100.0}
    # an unseen category starts from what all categories used
    assert p.predict("second") == {"memory": 100.0}
    with pytest.raises(ValueError, match="cold_start"):
        predictors.create("adaptive", cold_start={"gpus": 1}).predict("a")


def test_ladder_charge_climbs_and_grows_past_the_top():
    ladder = [100.0, 1000.0]
    prefix = [100.0, 1100.0]
    assert ladder_charge(ladder, prefix, 50.0, 2.0) == 100.0
    assert ladder_charge(ladder, prefix, 100.0, 2.0) == 100.0
    assert ladder_charge(ladder, prefix, 101.0, 2.0) == 1100.0
    assert ladder_charge(ladder, prefix, 1500.0, 2.0) == 1100.0 + 2000.0
    # learnt escalation steps come first past the top, then the top's doubling ladder
    assert ladder_charge(ladder, prefix, 1040.0, 2.0, steps=[1050.0, 1200.0]) == 1100.0 + 1050.0
    assert ladder_charge(ladder, prefix, 1300.0, 2.0, steps=[1050.0, 1200.0]) == 1100.0 + 1050.0 + 1200.0 + 2000.0
    assert ladder_charge(ladder, prefix, 2500.0, 2.0, steps=[1050.0, 1200.0]) == \
        1100.0 + 1050.0 + 1200.0 + 2000.0 + 4000.0
    assert ladder_charge(ladder, prefix, 1300.0, 2.0, cap=1100.0, steps=[1050.0, 1200.0]) == 1100.0 + 1050.0 + 1100.0


def test_adaptive_learns_how_far_new_maxima_go():
    """On a slowly growing category a task past the maximum is retried a few
    per cent above it (the ratios new maxima had), not at twice the maximum."""
    p = predictors.create("adaptive")
    usage = 1000.0
    for _ in range(60):
        usage *= 1.02
        p.observe("grow", {"memory": usage, "wall_time": 10.0})
    top = usage
    retry = p.predict("grow", previous={"memory": top}, exceeded={"memory"})["memory"]
    assert top < retry <= top * 1.03
    # beyond the learnt steps: back on the doubling ladder of the maximum, not twice the last step
    assert p.predict("grow", previous={"memory": top * 1.5}, exceeded={"memory"}) == {"memory": top * 2.0}
    assert p.predict("grow", previous={"memory": top * 2.0}, exceeded={"memory"}) == {"memory": top * 4.0}
    # a new category with no maximum of its own uses the pooled ratios
    p.observe("young", {"memory": 500.0, "wall_time": 10.0})
    assert 500.0 < p.predict("young", previous={"memory": 500.0}, exceeded={"memory"})["memory"] <= 515.0


def test_adaptive_follows_the_cheapest_ladder():
    p = predictors.create("adaptive", time_weighted=False)
    feed(p, "c", [100.0, 1000.0] * 50)
    state = p._category("c")["memory"]
    leader = state.own.leader()
    assert state.own.scores[leader] == min(state.own.scores)
    assert p.describe("c")["memory"]["expert"] == EXPERTS[leader]
    assert p.describe("c")["memory"]["buckets"] == [100.0, 1000.0]
    assert p.predict("c") == {"memory": 100.0}
    assert p.predict("c", previous={"memory": 100.0}, exceeded={"memory"}) == {"memory": 1000.0}
    assert p.predict("c", previous={"memory": 1000.0}, exceeded={"memory"}) == {"memory": 2000.0}


def test_adaptive_ladders_are_the_bucketing_states_results():
    """adaptive keeps no second history: its candidate ladders are its
    ``BucketingState``'s optimal and deterministic greedy buckets, and the max."""
    from bucketing import BucketingState
    p = predictors.create("adaptive", recompute_growth=0)
    rng = np.random.default_rng(3)
    values = rng.choice([120.0, 480.0, 900.0], 150) + rng.integers(0, 20, 150)
    walls = rng.uniform(1, 50, 150)
    mirror = BucketingState.views({"optimal": ("optimal", {"max_levels": 96, "retry_cost": 0.0}),
                                   "greedy-det": ("greedy", {"deterministic": True})}, recompute_growth=0)
    for v, w in zip(values, walls):
        p.observe("c", {"memory": float(v), "wall_time": float(w)})
        mirror.add(float(v), float(w))
    own = p._category("c")["memory"].own
    assert own.state is not mirror and len(own.state) == 150
    p.predict("c")
    assert own.ladders == [[b.upper for b in mirror.buckets("optimal")],
                           [b.upper for b in mirror.buckets("greedy-det")], [mirror.max]]


# ---- against the reference replay --------------------------------------------------

def test_greedy_det_matches_reference_on_bioblast(traces_dir):
    raw = pd.read_csv(traces_dir / "bioblast.csv")
    trace = pd.DataFrame({"category": raw["category"], "memory": raw["memory"].astype(float),
                          "wall_time": raw["wall_time"].astype(float), "status": "ok"})
    result = predictors.replay(trace, "greedy-det", group_by="category", params={"recompute_growth": 0})
    row = result.summary.iloc[0]
    # cctools' own C code replayed with the same semantics: AE_time 0.8933, 236 retries, 219 tasks retried
    assert round(float(row["AE_time"]), 4) == 0.8933
    assert int(row["retries"]) == 236 and int(row["tasks_retried"]) == 219


@pytest.mark.parametrize("name", ["greedy", "exhaustive"])
def test_expected_cost_is_the_mean_over_draws(name):
    from predictors.base import Observation
    p = predictors.create(name, max_resources={"memory": 8192.0}, seed=1)
    p.predict("c")
    state = p._category("c")["memory"]
    rng = np.random.default_rng(0)
    for v in rng.choice([300.0, 700.0, 1500.0, 3000.0], 200) + rng.normal(0, 30, 200):
        state.observe(float(abs(v)), Observation({}, 1.0, {}))
    for usage in (250.0, 1400.0, 2900.0, 5000.0):
        expected = state.expected_cost(usage, 2.0, 8192.0, 5.0)
        draws = []
        for _ in range(3000):   # walk the draws by hand: first, then retries while too small
            a, cost = min(state.first({}), 8192.0), 0.0
            while a < usage and a < 8192.0:
                cost += a * 7.0
                a = min(state.retry(a, {}), 8192.0)
            draws.append(cost + a * 2.0)
        assert expected == pytest.approx(np.mean(draws), rel=0.03), usage


@pytest.mark.parametrize("name", ["greedy-det", "exhaustive-det"])
def test_deterministic_expected_cost_is_the_walk_exactly(name):
    from predictors.base import Observation
    from predictors.counterfactual import walk_cost
    p = predictors.create(name, seed=1)
    p.predict("c")
    state = p._category("c")["memory"]
    assert state.expected_cost(500.0, 1.0, 8192.0, 0.0) is None          # cold start: the caller walks it
    rng = np.random.default_rng(3)
    for v in rng.choice([300.0, 700.0, 1500.0, 3000.0], 120) * rng.lognormal(0, 0.05, 120):
        state.observe(float(v), Observation({}, 1.0, {}))
    for usage in (0.0, 250.0, 700.0, 1400.0, 2999.0, 5000.0, 70000.0):
        for cap in (2000.0, 8192.0, float("inf")):
            for wall, rc in ((2.0, 0.0), (0.5, 30.0)):
                assert state.expected_cost(usage, wall, cap, rc) == walk_cost(state, usage, {}, wall, cap, rc)
