"""``auto`` and ``regression``: the feature-aware predictor and the online choice among policies."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import predictors


def linear_in_size(n: int, seed: int = 0, noise: float = 0.05) -> pd.DataFrame:
    """Memory = 100 MB + 4 x input_size, multiplicative noise; input sizes spread over 2 decades."""
    rng = np.random.default_rng(seed)
    size = np.exp(rng.uniform(np.log(10), np.log(1000), n))
    mem = (100 + 4 * size) * np.exp(rng.normal(0, noise, n))
    return pd.DataFrame({"category": "align", "memory": mem, "wall_time": rng.uniform(5, 50, n),
                         "input_size": size})


def ae(df: pd.DataFrame, p, **kw) -> float:
    return float(predictors.replay(df, p, **kw).summary.iloc[0]["AE_time"])


def test_regression_uses_features_where_they_pay() -> None:
    df = linear_in_size(1500)
    with_features = ae(df, "regression")
    assert with_features > 0.8                                  # the noise is 5 %
    assert with_features > ae(df, "adaptive") + 0.2            # memory spread 40x: no ladder comes close
    # without the feature column it is exactly its fallback
    assert ae(df, "regression", features=()) == pytest.approx(ae(df, "adaptive", features=()))
    # features that carry no information: the regression does not beat the fallback, so the fallback answers
    noise = df.assign(input_size=np.random.default_rng(5).uniform(10, 1000, len(df)))
    noise["memory"] = np.random.default_rng(6).choice([500.0, 2000.0], len(df))
    assert ae(noise, "regression") >= ae(noise, "adaptive", features=()) - 0.01


def test_regression_state_reports_its_model() -> None:
    p = predictors.create("regression")
    predictors.replay(linear_in_size(200), p)
    d = p.describe("align")["memory"]
    assert d["featured_tasks"] == 200 and d["offset"] > 0
    assert len(d["coef"]) == 3 and d["features"] == 1               # intercept, log size, its square


def test_auto_picks_the_feature_aware_policy_when_features_exist() -> None:
    p = predictors.create("auto")
    got = ae(linear_in_size(1500), p)
    assert p.leaders()["align"]["memory"] == "regression"
    assert got > ae(linear_in_size(1500), "exhaustive") + 0.2


def test_auto_follows_a_phase_change_without_thrashing() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    first = rng.choice([500.0, 3000.0], n // 2, p=[0.8, 0.2]) + rng.normal(0, 20, n // 2)
    second = rng.choice([800.0, 1500.0, 6000.0], n // 2, p=[0.5, 0.4, 0.1]) + rng.normal(0, 20, n // 2)
    df = pd.DataFrame({"category": "sim", "memory": np.concatenate([first, second]),
                       "wall_time": rng.uniform(10, 100, n)})
    p = predictors.create("auto")
    got = ae(df, p)
    for name in ("greedy", "greedy-det", "exhaustive", "exhaustive-det", "max-seen", "min-waste"):
        assert got >= ae(df, name) - 0.005, name
    # a switch is a change of leader; thrashing would be hundreds (11 with max-seen hedged as the
    # young default: near-equal candidates trade the lead a few times in the first 100 tasks)
    assert p.switches()["sim"]["memory"] <= 12


def test_pooled_prior_for_many_small_categories() -> None:
    # 40 categories of 8 tasks with one shape (a small mode most of the time): categories seen
    # late start from what worked on the others
    rng = np.random.default_rng(3)
    rows = []
    for i in range(320):
        cat = f"proc{i % 40}"
        rows.append((cat, float(rng.choice([200.0, 900.0], p=[0.9, 0.1]) * (1 + (i % 40) / 40)),
                     float(rng.uniform(1, 20))))
    df = pd.DataFrame(rows, columns=["category", "memory", "wall_time"])
    got = ae(df, "auto")
    assert got >= max(ae(df, n) for n in ("max-seen", "greedy-det", "exhaustive-det")) - 0.005
    assert got >= ae(df, "auto", params={"prior_tasks": 0.0}) - 0.02


def test_retry_cost_is_optimised_for() -> None:
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"category": "a", "memory": rng.choice([100.0, 400.0, 1600.0], 1500, p=[0.6, 0.3, 0.1]),
                       "wall_time": 1.0})
    cheap = predictors.replay(df, "auto", retry_cost=0.0).summary.iloc[0]
    costly = predictors.replay(df, "auto", retry_cost=60.0, params={"retry_cost": 60.0}).summary.iloc[0]
    assert costly["retries"] < cheap["retries"]
    blind = predictors.replay(df, "auto", retry_cost=60.0).summary.iloc[0]   # not told the cost
    assert costly["AE_time"] > blind["AE_time"]


def test_a_retry_cost_far_above_the_wall_times_is_survived() -> None:
    # 1 s tasks, 30 s per failed attempt: every new maximum of a growing workload costs
    # 31 tasks' worth. Only a policy that keeps the whole machine until the workload
    # settles (Tovar's max mode) avoids that; auto must find it (it was 0.36-0.41 below)
    df = predictors.synthetic("growth", 1000, seed=0).assign(wall_time=1.0)
    got = ae(df, "auto", retry_cost=30.0, params={"retry_cost": 30.0})
    assert got > ae(df, "tovar-max", retry_cost=30.0) - 0.05
    assert got > ae(df, "max-seen", retry_cost=30.0) + 0.3


def test_with_a_retry_cost_the_first_task_probes_in_few_long_steps() -> None:
    # each failed probe costs the retry cost: from 1/64 of the machine, times 4, so at most three
    # failures on the way to the machine, where the plain probe doubles up from 62.5 MB
    plain = predictors.create("adaptive", max_resources={"memory": 4096.0})
    costly = predictors.create("adaptive", max_resources={"memory": 4096.0}, retry_cost=30.0)
    assert plain.predict("a")["memory"] == 62.5
    assert plain.predict("a", previous={"memory": 62.5}, exceeded=["memory"])["memory"] == 125.0
    steps = [costly.predict("a")["memory"]]
    while steps[-1] < 4096.0:
        steps.append(costly.predict("a", previous={"memory": steps[-1]}, exceeded=["memory"])["memory"])
    assert steps == [64.0, 256.0, 1024.0, 4096.0]
    # a given cold start is kept; without a machine size, the published default
    assert predictors.create("adaptive", retry_cost=30.0, cold_start={"memory": 100.0}).predict("a")["memory"] == 100.0
    assert predictors.create("adaptive", retry_cost=30.0).predict("a")["memory"] == 1000.0
    costly.observe("a", {"memory": 300.0, "wall_time": 1.0})
    # a new category starts from the pooled ladder (300 MB seen, twice that past it)
    assert costly.predict("b")["memory"] in (300.0, 600.0)


def test_a_retry_up_the_pooled_ladder_does_not_jump_to_another_categorys_outlier() -> None:
    # category a: ~100 MB tasks and one 1.3 TB outlier; the pooled ladder a new category starts
    # from goes from 110 MB straight to the outlier, but the new category may lie anywhere above
    # the rung it exceeded: its retries step at most POOLED_JUMP times the failed allocation
    from predictors.adaptive import POOLED_JUMP
    machine = 2.0 ** 21
    p = predictors.create("adaptive", max_resources={"memory": machine})
    for v in (100.0, 110.0, 105.0, 1.3e6, 102.0, 108.0):
        p.observe("a", {"memory": v, "wall_time": 10.0})

    def ladder(category: str) -> list[float]:
        steps = [p.predict(category)["memory"]]
        while steps[-1] < machine:
            steps.append(p.predict(category, previous={"memory": steps[-1]}, exceeded=["memory"])["memory"])
        return steps

    new = ladder("b")
    assert new[0] == 110.0 and new[1] == 110.0 * POOLED_JUMP
    assert all(b <= a * POOLED_JUMP for a, b in zip(new, new[1:]))
    # its own ladder: one value above 110 MB, so a task that fails there is as likely just above
    # as near the outlier; it doubles (test_a_failure_just_above_a_rung_steps_into_the_gap)
    assert ladder("a")[:3] == [110.0, 220.0, 440.0]


def test_a_failure_just_above_a_rung_steps_into_the_gap() -> None:
    # 8 tasks near 1 GB and one 50 GB outlier: a task failing 1 GB lies in the gap just above it
    # with probability 1/2 (one value above); doubling costs less than jumping to 50 GB
    p = predictors.create("adaptive")
    for v in (900.0, 1000.0, 950.0, 50_000.0, 980.0, 920.0, 990.0, 940.0, 960.0):
        p.observe("a", {"memory": v, "wall_time": 100.0})
    first = p.predict("a")["memory"]
    assert first == 1000.0
    assert p.predict("a", previous={"memory": first}, exceeded=["memory"])["memory"] == 2000.0
    # a real upper mode (as many tasks at 20 GB as near 1 GB): the next rung is where they are
    for v in (20_000.0, 20_500.0, 19_800.0, 20_200.0) * 4:
        p.observe("b", {"memory": v, "wall_time": 100.0})
    for v in (900.0, 1000.0, 950.0, 980.0) * 4:
        p.observe("b", {"memory": v, "wall_time": 100.0})
    first = p.predict("b")["memory"]
    assert first == 1000.0
    assert p.predict("b", previous={"memory": first}, exceeded=["memory"])["memory"] == 20_500.0
    # a failed attempt that costs 50x the typical task's wall time makes the extra step not worth it
    q = predictors.create("adaptive", retry_cost=5000.0)
    for v in (900.0, 1000.0, 950.0, 50_000.0, 980.0, 920.0, 990.0, 940.0, 960.0):
        q.observe("a", {"memory": v, "wall_time": 100.0})
    first = q.predict("a")["memory"]
    assert q.predict("a", previous={"memory": first}, exceeded=["memory"])["memory"] > 2 * first


def test_hedged_max_seen_does_not_bet_a_young_category_on_one_outlier() -> None:
    p = predictors.create("hedged-max-seen")
    for v in (50_000.0, 1_000.0, 1_050.0):
        p.observe("a", {"memory": v, "wall_time": 100.0})
    # max-seen would give every task 50,000 MB; here the charge of a failure at 1,050 MB is small
    assert p.predict("a")["memory"] == 1_050.0

    def retries(q, a: float) -> list[float]:
        steps = [a]
        while steps[-1] <= 50_000.0:
            steps.append(q.predict("a", previous={"memory": steps[-1]}, exceeded=["memory"])["memory"])
        return steps

    # a task that fails 1,050 MB is as likely just above it as near the outlier (one value above):
    # it doubles into that gap while the gap is wide, then goes to the maximum, then past it
    assert retries(p, 1_050.0) == [1_050.0, 2_100.0, 4_200.0, 50_000.0, 100_000.0]
    # many tasks up there: the outlier is no longer alone, the retry goes to the maximum
    for _ in range(20):
        p.observe("a", {"memory": 50_000.0, "wall_time": 100.0})
    assert retries(p, 1_050.0)[:2] == [1_050.0, 50_000.0]
    # tasks alike: the maximum, as max-seen
    for v in (1_000.0, 1_100.0, 1_050.0):
        p.observe("b", {"memory": v, "wall_time": 100.0})
    assert p.predict("b")["memory"] == 1_100.0
    # a costly retry tips the balance back to the maximum
    costly = predictors.create("hedged-max-seen", retry_cost=3_000.0)
    for v in (4_000.0, 1_000.0, 1_050.0):
        costly.observe("a", {"memory": v, "wall_time": 100.0})
    assert costly.predict("a")["memory"] == 4_000.0
    # where the features differ, the spread may be theirs to explain: max-seen
    for v, size in ((50_000.0, 900.0), (1_000.0, 10.0), (1_050.0, 11.0)):
        p.observe("c", {"memory": v, "wall_time": 100.0}, features={"input_size": size})
    assert p.predict("c", features={"input_size": 12.0})["memory"] == 50_000.0
    # a long history: the same choice, where a lower value's failures cost less than the slack
    many = predictors.create("hedged-max-seen")
    rng = np.random.default_rng(0)
    for v in np.where(rng.random(2000) < 0.03, 50_000.0, rng.uniform(900.0, 1_000.0, 2000)):
        many.observe("a", {"memory": float(v), "wall_time": 100.0})
    assert 990.0 < many.predict("a")["memory"] <= 1_000.0
    with pytest.raises(ValueError, match="retry_cost"):
        predictors.create("hedged-max-seen", retry_cost=-1).predict("a")


def test_hedged_max_seen_gives_the_machine_while_a_costly_failure_is_likely() -> None:
    def allocations(**params) -> list[float]:
        p = predictors.create("hedged-max-seen", **params)
        out = []
        for k in range(200):
            if k:
                out.append(p.predict("a")["memory"])
            p.observe("a", {"memory": 1_500.0 + (k % 7), "wall_time": 1.0})
        return out
    # a failure costs 31 runs: while a new maximum is likely, the 2,048 MB machine is cheaper
    costly = allocations(max_resources={"memory": 2_048.0}, retry_cost=30.0)
    assert costly[:20] == [2_048.0] * 20 and costly[-1] == 1_506.0
    # without the machine's size, or where a failure costs less than two runs: max-seen
    assert set(allocations(retry_cost=30.0)[10:]) == {1_506.0}
    assert set(allocations(max_resources={"memory": 2_048.0}, retry_cost=0.5)[10:]) == {1_506.0}
    # a machine far above the usage is never the cheaper bet
    assert 64_000.0 not in allocations(max_resources={"memory": 64_000.0}, retry_cost=30.0)


def test_auto_does_not_give_a_young_category_its_early_outlier() -> None:
    p = predictors.create("auto", max_resources={"memory": 65_536.0})
    for v in (50_000.0, 1_000.0, 1_050.0):
        p.observe("a", {"memory": v, "wall_time": 100.0})
    assert p.predict("a")["memory"] == 1_050.0


def test_bad_parameters() -> None:
    for params, match in (({"candidates": ["oracle"]}, "candidate"), ({"candidates": ["nope"]}, "candidate"),
                          ({"halflife": 0}, "halflife"), ({"confidence": -1}, "confidence"),
                          ({"retry_cost": -1}, "retry_cost"), ({"wall_halflife": -1}, "wall_halflife"),
                          ({"wall_halflife": float("inf")}, "wall_halflife")):
        with pytest.raises(ValueError, match=match):
            predictors.create("auto", **params).predict("a")
    with pytest.raises(ValueError, match="min_tasks"):
        predictors.create("regression", min_tasks=1).predict("a")
    with pytest.raises(ValueError, match="fallback"):
        predictors.create("regression", fallback="regression").predict("a")


def test_regression_is_robust_to_tasks_whose_usage_ignores_their_inputs() -> None:
    # 5 % of the tasks use 5 MB whatever their input (a cached result): under least squares
    # they would pull the log-scale curve down by ~0.3 (26 %) at every input size
    rng = np.random.default_rng(7)
    n = 1000
    size = np.exp(rng.uniform(np.log(10), np.log(5000), n))
    mem = 30 * size ** 0.7 * np.exp(rng.normal(0, 0.05, n))
    cached = rng.random(n) < 0.05
    mem[cached] = 5.0
    df = pd.DataFrame({"category": "a", "memory": mem, "wall_time": 10.0, "input_size": size})
    p = predictors.create("regression")
    predictors.replay(df, p)
    coef = np.array(p.describe("a")["memory"]["coef"])
    for s in (50.0, 500.0, 3000.0):
        z = np.log1p(s)
        assert abs(coef @ [1, z, z * z] - np.log(30 * s ** 0.7)) < 0.1, s


@pytest.mark.parametrize("retry_cost", [0.0, 30.0])
def test_the_smoothed_offset_ladder_costs_less_on_the_next_tasks_than_the_step_function(retry_cost: float) -> None:
    # residuals of a category's first 10-40 predictions, normal with sd 0.15 on the log
    # scale; each ladder is charged what it costs a *new* task, exactly, under that normal
    from math import erf, exp, log, sqrt

    from predictors.offsets import calibrate_ladder

    sd, wall = 0.15, 20.0

    def above(offset: float) -> float:
        return 0.5 * (1 - erf(offset / (sd * sqrt(2))))

    def true_cost(ladder: list[float]) -> float:
        rungs = list(ladder)
        while above(rungs[-1]) > 1e-12:       # past the top rung: doubling
            rungs.append(rungs[-1] + log(2))
        cost = exp(rungs[0]) * wall
        for lo, hi in zip(rungs, rungs[1:]):
            cost += above(lo) * (exp(lo) * retry_cost + exp(hi) * wall)
        return cost

    rng = np.random.default_rng(3)
    costs = {True: [], False: []}
    for _ in range(300):
        r = rng.normal(0, sd, int(rng.integers(10, 41)))
        ones = np.ones(r.size)
        for smooth in (True, False):
            ladder = calibrate_ladder(r, ones, ones * wall, retry_cost, smooth=smooth)
            assert ladder == sorted(ladder)
            costs[smooth].append(true_cost(ladder))
    assert np.mean(costs[True]) < np.mean(costs[False])


def test_regression_retries_climb_its_offset_ladder() -> None:
    df = linear_in_size(300, seed=4, noise=0.2)
    p = predictors.create("regression")
    predictors.replay(df, p)
    model = next(iter(p._states["align"]["memory"].models.values()))
    x = model.row([float(np.log1p(100.0))])
    first = model.allocation(x)
    rungs = [first]
    while len(rungs) < len(model.ladder) + 2:
        rungs.append(model.retry(x, rungs[-1]))
    pred = np.exp(model.raw(x))
    assert rungs[:len(model.ladder)] == pytest.approx([pred * np.exp(o) for o in model.ladder])
    assert rungs[-1] == pytest.approx(2 * rungs[-2])        # past the ladder: doubling
    assert len(model.ladder) > 1 and first == pytest.approx(pred * np.exp(model.delta))


def test_a_young_category_follows_features_that_vary() -> None:
    # one category, memory twice the input size: the young default's fit (from the first three
    # tasks on, once cheaper than max-seen on the category's tasks since) answers the sixth, so
    # a small input gets a small allocation, not the largest usage seen
    p = predictors.create("auto")
    rng = np.random.default_rng(3)
    for size in (100.0, 1000.0, 150.0, 900.0, 120.0):
        feats = {"input_size": size}
        p.predict("a", features=feats)
        p.observe("a", {"memory": 2 * size * rng.uniform(0.97, 1.03), "wall_time": 5.0}, features=feats)
    assert p.leaders()["a"]["memory"] == "regression"
    assert p.predict("a", features={"input_size": 110.0})["memory"] < 400.0     # max seen: ~2,200 MB


def test_features_that_never_vary_leave_the_regression_to_its_fallback() -> None:
    # every task reads the same input (blast-medium's blastall): a fit on it is a mean and an
    # offset ladder over a handful of tasks, not information; the fallback answers every task
    df = predictors.synthetic("normal", 400, seed=4).assign(input_size=4876.0)
    assert ae(df, "regression") == ae(df, "adaptive")
    p = predictors.create("regression")
    for v in df["memory"][:50]:
        p.observe("a", {"memory": float(v), "wall_time": 5.0}, features={"input_size": 4876.0})
    assert p.describe("a")["memory"]["features"] == 1.0     # the model is fitted, it just does not answer


def test_a_fit_on_nearly_equal_inputs_does_not_extrapolate_to_absurd_sizes() -> None:
    # two tasks whose inputs nearly coincide give a line of any slope; the third task's input
    # took it to 10^300 MB, and the offset ladder calibrated on that residual raised a math error
    p = predictors.create("regression", min_tasks=2)
    for size, mem in ((1.0, 44.0), (1.0001, 80.0), (3.0, 60.0), (2.0, 50.0)):
        got = p.predict("a", features={"input_size": size})["memory"]
        assert got <= 100 * 80.0
        p.observe("a", {"memory": mem, "wall_time": 5.0}, features={"input_size": size})
    assert p.predict("a", features={"input_size": 50.0})["memory"] <= 100 * 80.0


def test_regression_features_per_task_set() -> None:
    # the first tasks carry no input_size, later ones do; a negative feature is a value, not a reason to ignore
    rng = np.random.default_rng(8)
    n = 600
    size = np.exp(rng.uniform(np.log(10), np.log(2000), n))
    mem = (100 + 4 * size) * np.exp(rng.normal(0, 0.05, n))
    feats = [{} if i < 50 else {"input_size": float(size[i]), "offset": -1.0 - i % 3} for i in range(n)]
    p = predictors.create("regression")
    for i in range(n):
        p.predict("a", features=feats[i])
        p.observe("a", {"memory": float(mem[i]), "wall_time": 5.0}, features=feats[i])
    d = p.describe("a")["memory"]
    assert d["features"] == 2 and len(d["coef"]) == 5 and d["featured_tasks"] == n - 50
    late = {"input_size": 1500.0, "offset": -2.0}
    assert p.predict("a", features=late)["memory"] > 2 * p.predict("a", features={"input_size": 20.0,
                                                                                   "offset": -2.0})["memory"]


def test_cold_start_probes_then_follows_max_seen() -> None:
    # nothing known: adaptive's probe (1/16 of the published 1000 MB), not a fixed 1000 MB start;
    # then the young default, regression over max-seen, which without features is max-seen exactly
    p = predictors.create("auto")
    assert p.predict("a")["memory"] == pytest.approx(1000 / 16)
    p.observe("a", {"memory": 300.0, "wall_time": 5.0})
    # regression leads, but without features its fallback answers, and leaders() says so
    assert p.leaders()["a"]["memory"] == "hedged-max-seen" and p.predict("a")["memory"] == 300.0
    # a workload of one category has no pooled prior: its own tasks are not counted twice
    for v in (280.0, 310.0, 290.0):
        p.observe("a", {"memory": v, "wall_time": 5.0})
    assert p._states["a"]["memory"]._pooled() is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_many_small_categories_match_the_best_simple_policy(seed: int) -> None:
    # a Nextflow-like workload (categories of 3-30 tasks): young categories follow the default
    # unless the other categories show another candidate cheaper beyond chance
    df = predictors.synthetic("many-categories", 1000, seed=seed)
    got = ae(df, "auto")
    assert got >= max(ae(df, "max-seen"), ae(df, "adaptive")) - 0.01


def test_a_lucky_cold_start_does_not_take_the_lead() -> None:
    # the first tasks use 900-1000 MB: the bucketing modes' fixed 1000 MB start fits every one,
    # while max-seen fails (and doubles) at each new maximum; that luck says nothing about
    # their buckets, so it must not make them lead before their buckets are used
    rng = np.random.default_rng(9)
    p = predictors.create("auto")
    for i in range(10):
        p.predict("a")
        p.observe("a", {"memory": float(rng.uniform(900, 1000)), "wall_time": 10.0})
        assert p.leaders()["a"]["memory"] not in ("greedy-det", "exhaustive-det", "greedy", "exhaustive"), i


def test_a_candidate_just_out_of_its_cold_start_needs_evidence_of_its_own() -> None:
    # one large task, then small ones: from its 11th task exhaustive-det's buckets give the small
    # tasks far less than max-seen's maximum, but two lucky tasks are not evidence enough
    p = predictors.create("auto", candidates=["max-seen", "exhaustive-det"])
    leaders = []
    for i in range(40):
        p.predict("a")
        p.observe("a", {"memory": 2_000.0 if i == 0 else 540.0 - i, "wall_time": 10.0})
        leaders.append(p.leaders()["a"]["memory"])
    # tasks 0-9 are its cold start, 10-14 its own evidence: it may lead from the 16th task on
    assert leaders[:14] == ["max-seen"] * 14 and leaders[14:] == ["exhaustive-det"] * 26


def test_a_candidate_in_its_cold_start_does_not_lead_on_its_stand_in_score() -> None:
    # Tovar's modes give the whole machine until a category settles; their score meanwhile is the
    # default's cost (a cold start says nothing about the policy). The other categories' tasks,
    # where max-throughput settled far below max-seen, must not make it lead a category that
    # never settles: the leader would give out the whole machine, which no score measured.
    machine = 100_000.0
    p = predictors.create("auto", max_resources={"memory": machine}, candidates=["max-seen", "max-throughput"])
    rng = np.random.default_rng(2)
    for _ in range(300):   # 90 % of tasks at ~100 MB, 10 % at ~1,000 MB: max-throughput settles low
        v = float(rng.choice([100.0, 1000.0], p=[0.9, 0.1]))
        p.predict("settled")
        p.observe("settled", {"memory": v, "wall_time": 10.0})
    assert p.leaders()["settled"]["memory"] == "max-throughput"
    given = []
    for i in range(150):   # a new 250 MB histogram bin every 17 tasks: Tovar never settles here
        given.append(p.predict("growing")["memory"])
        p.observe("growing", {"memory": 100.0 + 15.0 * i, "wall_time": 10.0})
    assert max(given[1:]) < machine / 10


def test_bucketing_candidates_sharing_one_history_allocate_as_on_their_own() -> None:
    # auto's bucketing candidates read one history (one set of points, recomputed together);
    # each must allocate exactly as the same predictor fed the same tasks on its own
    df = predictors.synthetic("trimodal", 400, seed=4)
    p = predictors.create("auto")
    p.observe("c", {"memory": 1.0})
    states = p._category("c")["memory"].states
    names = ("greedy-det", "exhaustive-det", "greedy", "exhaustive")
    assert len({id(states[p._names.index(n)].history) for n in names}) == 1
    alone = {n: predictors.create(n, recompute_growth=0.01, seed=p._names.index(n)) for n in names}
    for q in alone.values():
        q.observe("c", {"memory": 1.0})
    for i, (mem, wall) in enumerate(zip(df["memory"], df["wall_time"])):
        for n in names:
            mine, theirs = states[p._names.index(n)], alone[n]._category("c")["memory"]
            if n.endswith("-det"):
                assert mine.first({}) == theirs.first({}), (n, i)
            assert mine.expected_cost(mem, wall, float("inf"), 0.0) == theirs.expected_cost(mem, wall, float("inf"), 0.0), (n, i)
        p.observe("c", {"memory": mem, "wall_time": wall})
        for q in alone.values():
            q.observe("c", {"memory": mem, "wall_time": wall})


def test_retry_cost_reaches_every_candidate_and_fallback_that_takes_it() -> None:
    auto = predictors.create("auto", candidates=["hedged-max-seen", "max-seen", "regression"], retry_cost=7.0)
    auto.predict("a")
    assert [c.get_params().get("retry_cost") for c in auto._candidates] == [7.0, None, 7.0]
    assert auto._candidates[2]._fallback.get_params()["retry_cost"] == 7.0
    reg = predictors.create("regression", fallback="max-seen", retry_cost=7.0)
    reg.predict("a")
    assert "retry_cost" not in reg._fallback.get_params()


def test_hedged_max_seen_is_max_seen_as_soon_as_features_differ() -> None:
    p = predictors.create("hedged-max-seen")
    for v in [50_000.0] + [1_000.0] * 1000:       # the choice is recomputed every 10 tasks by now
        p.observe("a", {"memory": v, "wall_time": 100.0}, features={"input_size": 5.0})
    assert p.predict("a")["memory"] == 1_000.0      # features alike: the hedge
    p.observe("a", {"memory": 1_000.0, "wall_time": 100.0}, features={"input_size": 6.0})
    assert p.predict("a")["memory"] == 50_000.0     # not at the next scheduled recompute


@pytest.mark.parametrize("candidates", [("greedy-det",), ("greedy-det", "exhaustive-det", "max-seen")])
def test_auto_retries_into_the_gap_whichever_candidate_leads(candidates) -> None:
    # a reference bucketing's next bucket after the bulk is the lone outlier; auto following it
    # still steps into the gap just above the failed allocation first (gaps.gap_step)
    usages = [900.0, 1000.0, 950.0, 50_000.0, 980.0, 920.0, 990.0, 940.0, 960.0, 970.0, 930.0, 910.0, 925.0,
              985.0, 945.0]   # 10 tasks of the bucketings' cold start, 5 of their own
    auto, alone = predictors.create("auto", candidates=candidates), predictors.create("greedy-det")
    for v in usages:
        for q in (auto, alone):
            q.observe("a", {"memory": v, "wall_time": 100.0})
    assert auto.leaders()["a"]["memory"] == "greedy-det"
    first = alone.predict("a")["memory"]
    assert auto.predict("a")["memory"] == first == 1000.0
    assert alone.predict("a", previous={"memory": first}, exceeded=["memory"])["memory"] == 50_000.0
    assert auto.predict("a", previous={"memory": first}, exceeded=["memory"])["memory"] == 2_000.0


@pytest.mark.parametrize("outlier, steps", [(4_000.0, False), (8_000.0, True), (20_000.0, True)])
def test_auto_places_a_failed_task_by_the_bulks_spread_not_log_uniformly(outlier: float, steps: bool) -> None:
    # a spread bulk's tail reaches above its largest value, while the gap up to a lone
    # outlier 6-15x above is mostly empty (gaps.smoothed_share): a task that failed at the
    # bulk's maximum is retried at twice it first. Placed log-uniformly in the gap, it went
    # straight to the outlier below 38x. An outlier 3x above is within the step's reach.
    bulk = list(np.round(1000 * np.exp(np.random.default_rng(1).normal(0, 0.3, 14))))
    auto, alone = predictors.create("auto", candidates=("greedy-det",)), predictors.create("greedy-det")
    for v in bulk[:3] + [outlier] + bulk[3:]:
        for q in (auto, alone):
            q.observe("a", {"memory": v, "wall_time": 100.0})
    top = {"memory": max(bulk)}
    assert alone.predict("a", previous=top, exceeded=["memory"])["memory"] == outlier
    retry = auto.predict("a", previous=top, exceeded=["memory"])["memory"]
    assert retry == (2 * top["memory"] if steps else outlier)


@pytest.mark.parametrize("retry_cost", [0.0, 30.0])
def test_candidates_reading_one_shared_history_allocate_as_each_on_its_own(retry_cost: float) -> None:
    # auto's adaptive and deterministic bucketing candidates read one history per category
    # (predictors.shared_histories); each must allocate exactly as the predictor on its own
    machine = {"memory": 8_192.0}
    auto = predictors.create("auto", seed=3, max_resources=machine, retry_cost=retry_cost)
    auto.predict("warm-up")
    names = auto._names
    alone = {name: predictors.create(name, seed=3 + i, max_resources=machine,
                                     **({"recompute_growth": 0.01} if name == "greedy-det" else {}),
                                     **({"retry_cost": retry_cost} if name == "adaptive" else {}))
             for i, name in enumerate(names) if name in ("adaptive", "greedy-det", "exhaustive-det")}
    rng = np.random.default_rng(5)
    for k in range(600):
        category = "ab"[int(rng.integers(2))]
        usage = float(rng.choice([300.0, 900.0, 2_500.0]) * rng.uniform(0.8, 1.0) * (1 + k / 600))
        obs = {"memory": usage, "wall_time": float(rng.uniform(1, 100))}
        auto.predict(category)   # the leader reads the shared history after every task
        states = auto._states[category]["memory"].states if category in auto._states else None
        for name, p in alone.items():
            want = p.predict(category)["memory"]
            if states is not None:
                assert states[names.index(name)].first({}) == want, (k, name)
                retry = min(states[names.index(name)].retry(want, {}), machine["memory"])   # predict() caps
                assert retry == p.predict(category, previous={"memory": want}, exceeded=["memory"])["memory"]
            p.observe(category, obs)
        auto.observe(category, obs)


@pytest.mark.parametrize("wall_halflife, leader", [(20.0, "max-seen"), (0.0, "whole-machine")])
def test_one_long_failed_task_does_not_hand_over_the_lead(wall_halflife: float, leader: str) -> None:
    # 200 tasks of 900-1000 MB, ~100 s each: max-seen leads the whole machine (2,048 MB). Then a new
    # maximum that happened to run 30,000 s fails under max-seen. At its own wall time (wall_halflife=0)
    # that one failure outweighs everything max-seen saved; at what the recent tasks say a task of its
    # usage runs it does not, and the next tasks are no likelier to be long (walls module)
    p = predictors.create("auto", max_resources={"memory": 2048.0}, candidates=["max-seen", "whole-machine"],
                          wall_halflife=wall_halflife)
    rng = np.random.default_rng(3)
    for _ in range(200):
        p.predict("a")
        p.observe("a", {"memory": float(rng.uniform(900, 1000)), "wall_time": float(rng.lognormal(np.log(100), 0.2))})
    assert p.leaders()["a"]["memory"] == "max-seen"
    p.predict("a")
    p.observe("a", {"memory": 1010.0, "wall_time": 30_000.0})
    assert p.leaders()["a"]["memory"] == leader
