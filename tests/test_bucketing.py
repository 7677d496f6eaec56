"""The bucketing algorithms against hand-checked cases and straightforward
reference implementations of the published procedures (written here, slow)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import bucketing
from bucketing import Bucket, BucketingState, ladder_cost, optimal_ladder


# ---- straightforward references -------------------------------------------------------

def ref_sorted_points(values, sig):
    """Points sorted by value the way the reference inserts them (before the first >= value)."""
    pts: list[tuple[float, float]] = []
    for v, s in zip(values, sig):
        j = 0
        while j < len(pts) and pts[j][0] < v:
            j += 1
        pts.insert(j, (float(v), float(s)))
    return pts


def ref_greedy(values, deterministic=False):
    """O(n^2)-per-bucket transcription of greedy bucketing over unbinned points."""
    pts = ref_sorted_points(values, range(1, len(values) + 1))

    def cost(lo, hi, b):
        total = sum(s for _, s in pts[lo:hi + 1])
        low = sum(s for _, s in pts[lo:b + 1])
        high = total - low
        e1 = sum(v * s for v, s in pts[lo:b + 1]) / low
        e2 = sum(v * s for v, s in pts[b + 1:hi + 1]) / high if high else 0.0
        p1, p2, bv, m = low / total, high / total, pts[b][0], pts[hi][0]
        if deterministic:
            return p1 * (bv - e1) + p2 * (bv + m - e2)
        return p1 * p1 * (bv - e1) + p1 * p2 * (m - e1) + p2 * p1 * (bv + m - e2) + p2 * p2 * (m - e2)

    breaks, todo = [], [(0, len(pts) - 1)]
    while todo:
        lo, hi = todo.pop()
        best = None
        for i in range(lo, hi + 1):
            c = cost(lo, hi, i)
            if best is None or c <= best[0]:
                best = (c, i)
        i = best[1]
        if i == hi:
            continue
        breaks.append(i)
        if i != lo:
            todo.append((lo, i))
        if i + 1 != hi:
            todo.append((i + 1, hi))
    uppers = [pts[b][0] for b in sorted(breaks) + [len(pts) - 1]]
    total = sum(s for _, s in pts)
    probs = [0.0] * len(uppers)
    k = 0
    for v, s in pts:
        while v > uppers[k]:
            k += 1
        probs[k] += s
    return [(u, p / total) for u, p in zip(uppers, probs)]


def ref_ladder_cost(u, p, e, deterministic):
    n = len(u)
    if deterministic:
        return sum(p[i] * (sum(u[:i + 1]) - e[i]) for i in range(n))
    c = [[0.0] * n for _ in range(n)]
    for j in range(n):
        for i in range(j + 1):
            c[i][j] = u[j] - e[i]
    for i in range(n - 1, -1, -1):
        for j in range(i - 1, -1, -1):
            above = sum(p[j + 1:])
            c[i][j] = u[j] + sum(p[k] / above * c[i][k] for k in range(j + 1, n))
    return sum(p[i] * p[j] * c[i][j] for i in range(n) for j in range(n))


def ref_exhaustive(values, max_buckets=10, deterministic=False):
    """Candidate lists built point by point, scored with the O(n^3) cost table."""
    pts = ref_sorted_points(values, range(1, len(values) + 1))
    top = pts[-1][0]
    best = None
    for n in range(1, max_buckets + 1):
        steps = max(0, math.floor(math.log(top / n) / math.log(2))) if top > 0 else 0
        cands = [2.0 ** i for i in range(steps)] + [top * (i + 1) / n for i in range(n - 1)] + [top]
        groups: dict[int, list] = {}
        for v, s in pts:
            k = next(i for i, c in enumerate(cands) if c >= v)
            groups.setdefault(k, []).append((v, s))
        total = sum(s for _, s in pts)
        u = [max(v for v, _ in g) for _, g in sorted(groups.items())]
        p = [sum(s for _, s in g) / total for _, g in sorted(groups.items())]
        e = [sum(v * s for v, s in g) / sum(s for _, s in g) for _, g in sorted(groups.items())]
        cost = ref_ladder_cost(u, p, e, deterministic)
        if best is None or cost < best[0] - 1e-9 * abs(best[0]):
            best = (cost, list(zip(u, p)))
    return best[1]


def rounded(buckets):
    return [(float(u), round(float(p), 9)) for u, p in buckets]


# ---- hand-checked cases ------------------------------------------------------------

@pytest.mark.parametrize("algo", [bucketing.greedy, bucketing.exhaustive, bucketing.kmeans])
def test_two_separated_clusters_give_two_buckets(algo):
    values = [100, 101, 102, 100, 1000, 1001, 1002, 1000]
    sig = [1.0] * len(values)
    kwargs = {"n_buckets": 2} if algo is bucketing.kmeans else {}
    buckets = algo(values, sig, **kwargs)
    assert [b.upper for b in buckets] == [102.0, 1002.0]
    assert [b.probability for b in buckets] == pytest.approx([0.5, 0.5])


@pytest.mark.parametrize("algo", [bucketing.greedy, bucketing.exhaustive, bucketing.kmeans, bucketing.quantile])
def test_one_value_gives_one_bucket(algo):
    assert algo([512.0]) == [Bucket(512.0, 1.0)]
    assert algo([7.0] * 20) == [Bucket(7.0, 1.0)]


def test_significance_changes_probabilities():
    values = [10, 10, 500, 500]
    assert [b.probability for b in bucketing.greedy(values, [1, 1, 1, 1])] == pytest.approx([0.5, 0.5])
    assert [b.probability for b in bucketing.greedy(values, [1, 1, 3, 3])] == pytest.approx([0.25, 0.75])
    # the default significance is the arrival index: later tasks weigh more
    assert [b.probability for b in bucketing.greedy(values)] == pytest.approx([3 / 10, 7 / 10])


def test_quantile_bounds():
    buckets = bucketing.quantile([1, 2, 3, 4, 5, 6, 7, 8], [1] * 8, n_buckets=4)
    assert buckets == [Bucket(2.0, 0.25), Bucket(4.0, 0.25), Bucket(6.0, 0.25), Bucket(8.0, 0.25)]


def test_deterministic_cost_prefers_fewer_failures():
    # a rare low value just below a common one: under the deterministic policy every
    # common task would pay the low bucket first, so one bucket is kept ...
    values = [900.0] + [1000.0] * 50
    assert bucketing.greedy(values, [1.0] * 51, deterministic=True) == [Bucket(1000.0, 1.0)]
    # ... while a common low value is worth its own bucket
    assert len(bucketing.greedy([900.0] * 50 + [1000.0], [1.0] * 51, deterministic=True)) == 2


# ---- fast paths equal the references -----------------------------------------------

@pytest.mark.parametrize("deterministic", [False, True])
def test_greedy_equals_reference(deterministic):
    rng = np.random.default_rng(1)
    for _ in range(120):
        n = int(rng.integers(1, 30))
        values = rng.integers(1, int(rng.integers(2, 50)), n).astype(float).tolist()
        assert rounded(bucketing.greedy(values, deterministic=deterministic)) == \
            rounded(ref_greedy(values, deterministic)), values


@pytest.mark.parametrize("deterministic", [False, True])
def test_exhaustive_equals_reference(deterministic):
    rng = np.random.default_rng(2)
    for _ in range(60):
        n = int(rng.integers(1, 30))
        values = rng.integers(0, int(rng.integers(2, 3000)), n).astype(float).tolist()
        if max(values) == 0:
            values[0] = 1.0
        got = bucketing.exhaustive(values, max_buckets=6, deterministic=deterministic)
        assert rounded(got) == rounded(ref_exhaustive(values, 6, deterministic)), values


def test_closed_form_ladder_cost_equals_cost_table():
    rng = np.random.default_rng(3)
    for _ in range(100):
        n = int(rng.integers(1, 10))
        u = np.sort(rng.choice(1000, n, replace=False) + 1.0)
        p = rng.random(n)
        p /= p.sum()
        e = u - rng.random(n) * np.diff(u, prepend=0.0)
        for det in (False, True):
            assert ladder_cost(u, p, e, det) == pytest.approx(ref_ladder_cost(u, p, e, det), rel=1e-12)


# ---- incremental state ------------------------------------------------------------

@pytest.mark.parametrize("method,params", [("greedy", {}), ("greedy", {"deterministic": True}),
                                           ("exhaustive", {"max_buckets": 5}), ("kmeans", {"n_buckets": 3}),
                                           ("quantile", {"n_buckets": 3}), ("quantized", {"n_buckets": 3})])
def test_state_equals_recomputation(method, params):
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.normal(300, 20, 150), rng.normal(900, 40, 100)]).round()
    rng.shuffle(values)
    func = getattr(bucketing, method)
    exact = BucketingState(method, recompute_growth=0, **params)
    lazy = BucketingState(method, **params)
    for i, v in enumerate(values, 1):
        exact.add(v)
        lazy.add(v)
        if i % 37 == 0 or i == len(values):
            assert exact.buckets() == func(values[:i], **params)
            stale = lazy.stale()
            got = lazy.buckets()
            if stale:  # recomputed now: equal to scratch
                assert got == func(values[:i], **params)
    assert len(exact) == len(values) and exact.max == values.max()


def test_state_schedule_recomputes_every_point_below_100():
    s = BucketingState("greedy")
    for v in range(1, 100):
        s.add(float(v))
        assert s.stale()
        s.buckets()
    for v in range(100, 300):
        s.add(float(v))
    s.buckets()
    s.add(1.0)
    assert not s.stale()  # 1 new point of 300 is below 1 %


# ---- optimal ladders ----------------------------------------------------------------

def brute_force_ladder_cost(values, weights):
    """Cheapest ladder among all subsets of the values that end at the maximum."""
    total = sum(weights)
    best = None
    for r in range(len(values)):
        for rungs in itertools.combinations(values[:-1], r):
            ladder = list(rungs) + [values[-1]]
            cost = 0.0
            for v, w in zip(values, weights):
                for a in ladder:
                    cost += w * a
                    if a >= v:
                        break
            best = cost if best is None else min(best, cost)
    return best / total


def random_history(rng, max_values: int) -> tuple[np.ndarray, np.ndarray]:
    """1 to max_values - 1 distinct ascending values in 1..199 with random weights."""
    k = int(rng.integers(1, max_values))
    values = np.sort(rng.choice(np.arange(1, 200), k, replace=False)).astype(float)
    return values, rng.random(k) + 0.01


def mean_charge(ladder, values, weights) -> float:
    """The weighted mean of what climbing ``ladder`` charges each value."""
    return sum(w * sum(ladder[:next(i for i, a in enumerate(ladder) if a >= v) + 1])
               for v, w in zip(values, weights)) / sum(weights)


def test_optimal_ladder_is_optimal():
    rng = np.random.default_rng(5)
    for _ in range(40):
        values, weights = random_history(rng, 8)
        ladder = optimal_ladder(values, weights)
        assert ladder[-1] == values[-1] and ladder == sorted(ladder)
        cost = mean_charge(ladder, values, weights)
        assert cost == pytest.approx(brute_force_ladder_cost(list(values), list(weights)))


def test_time_weights_move_the_optimal_ladder():
    values = np.array([100.0, 1000.0])
    assert optimal_ladder(values, np.array([1.0, 1.0])) == [100.0, 1000.0]
    # when the big tasks run 100x longer, skipping the low rung is cheaper
    assert optimal_ladder(values, np.array([1.0, 100.0])) == [1000.0]


def test_optimal_buckets_are_the_ladder_with_weight_shares():
    values = np.array([100.0, 200.0, 1000.0])
    weights = np.array([1.0, 1.0, 2.0])
    buckets = bucketing.optimal.optimal_binned(values, weights)
    assert [b.upper for b in buckets] == optimal_ladder(values, weights)
    assert sum(b.probability for b in buckets) == pytest.approx(1.0)
    assert buckets[-1].upper == 1000.0 and buckets[-1].probability == pytest.approx(0.5)


def test_the_exchangeable_tail_is_part_of_the_optimal_ladder():
    # the tail point is the next task's chance (1 / (n + 1)) of exceeding all n seen,
    # retried at tail_ratio x the maximum (at most cap): the ladder with it is the
    # brute-force optimum over the history plus that point
    rng = np.random.default_rng(8)
    for _ in range(40):
        values, weights = random_history(rng, 7)
        counts = rng.integers(1, 4, values.size).astype(float)
        cap = float(values[-1] * rng.uniform(1.01, 3.0))
        buckets = bucketing.optimal.optimal_binned(values, weights, None, counts, tail_ratio=2.0, cap=cap)
        top = min(2 * values[-1], cap)
        ladder = [b.upper for b in buckets]
        assert ladder[-1] == top and ladder == sorted(ladder)
        assert sum(b.probability for b in buckets) == pytest.approx(1.0)
        tail_w = weights.sum() / counts.sum()
        full_v, full_w = list(values) + [top], list(weights) + [tail_w]
        assert mean_charge(ladder, full_v, full_w) == pytest.approx(brute_force_ladder_cost(full_v, full_w))
    # a maximum just below the machine size: after 3 tasks the ladder skips it (a failure
    # there would cost it again for 48 MB of slack), after 100 it keeps it
    values, weights = np.array([500.0, 2000.0]), np.array([1.0, 1.0])
    few = bucketing.optimal.optimal_binned(values, weights, None, np.array([2.0, 1.0]), tail_ratio=2.0,
                                           cap=2048.0)
    many = bucketing.optimal.optimal_binned(values, weights, None, np.array([60.0, 40.0]), tail_ratio=2.0,
                                            cap=2048.0)
    assert [b.upper for b in few] == [500.0, 2048.0]
    assert [b.upper for b in many] == [500.0, 2000.0, 2048.0]
    assert many[-1].probability == pytest.approx(0.01 / 1.01)
    # no tail without tail_ratio, or when the maximum is the machine size
    assert [b.upper for b in bucketing.optimal.optimal_binned(values, weights, None, np.array([2.0, 1.0]),
                                                              tail_ratio=2.0, cap=2000.0)] == [500.0, 2000.0]


# ---- quantized ----------------------------------------------------------------------

def ref_quantized(values, n_buckets):
    """Transcription of cctools' quantized update over unbinned sorted points."""
    pts = sorted(values)
    n = len(pts)
    out, j, count = [], 0, 0
    cut = math.floor(1.0 * n / n_buckets)
    for i, v in enumerate(pts, 1):
        count += 1
        if i >= cut:
            out.append((v, count / n))
            j += 1
            count = 0
            cut = math.floor((1.0 + j) / n_buckets * n)
    merged: list[list[float]] = []
    for v, p in out:  # equal bounds: one bucket
        if merged and merged[-1][0] == v:
            merged[-1][1] += p
        else:
            merged.append([v, p])
    return merged


@pytest.mark.parametrize("n_buckets", [1, 2, 3, 7, 10])
def test_quantized_equals_reference_transcription(n_buckets):
    rng = np.random.default_rng(n_buckets)
    for size in (1, 2, 5, 9, 10, 11, 37, 200):
        values = rng.integers(0, 40, size).astype(float)  # many ties
        got = bucketing.quantized(values, n_buckets=n_buckets)
        want = ref_quantized(list(values), n_buckets)
        assert [b.upper for b in got] == [v for v, _ in want]
        assert [b.probability for b in got] == pytest.approx([p for _, p in want])
        assert got[-1].upper == values.max()


def test_quantized_one_bucket_is_the_max_and_short_histories_keep_every_value():
    assert bucketing.quantized([5.0, 1.0, 3.0], n_buckets=1) == [Bucket(5.0, 1.0)]
    assert [b.upper for b in bucketing.quantized([5.0, 1.0, 3.0], n_buckets=10)] == [1.0, 3.0, 5.0]
    # equal counts, not recency: the order of arrival does not matter
    assert bucketing.quantized([1.0, 2.0, 3.0, 4.0], n_buckets=2) == \
        bucketing.quantized([4.0, 3.0, 2.0, 1.0], n_buckets=2) == [Bucket(2.0, 0.5), Bucket(4.0, 0.5)]
    with pytest.raises(ValueError, match="n_buckets"):
        bucketing.quantized([1.0], n_buckets=0)


def test_state_views_share_one_history_and_schedule():
    s = BucketingState.views({"opt": ("optimal", {}), "q": ("quantized", {"n_buckets": 2}),
                              "g": ("greedy", {"deterministic": True})}, recompute_growth=0)
    assert s.buckets() == [] and s.computed_at == 0
    values = [100.0, 120.0, 900.0, 130.0, 950.0, 110.0]
    walls = [1.0, 2.0, 50.0, 1.0, 60.0, 3.0]
    for v, w in zip(values, walls):
        s.add(v, w)
    assert s.computed_at == 0 and s.stale()
    sig = np.arange(1.0, 7.0)
    assert s.buckets("g") == bucketing.greedy(values, deterministic=True)
    assert s.computed_at == 6
    assert s.buckets("q") == bucketing.quantized(values, n_buckets=2)
    order = np.argsort(values)
    assert [b.upper for b in s.buckets()] == optimal_ladder(np.array(values)[order], (sig * walls)[order])
    with pytest.raises(ValueError, match="known views: opt, q, g"):
        s.buckets("nope")
    with pytest.raises(ValueError, match="wall time"):
        s.add(1.0, 0.0)


# ---- bad input --------------------------------------------------------------------

@pytest.mark.parametrize("algo", [bucketing.greedy, bucketing.exhaustive, bucketing.kmeans, bucketing.quantile])
@pytest.mark.parametrize("values,sig,match", [
    ([1.0, float("nan")], None, r"values\[1\]"),
    ([1.0, -2.0], None, r"values\[1\]"),
    ([], None, "empty"),
    ([1.0, 2.0], [1.0], "significance"),
    ([1.0, 2.0], [1.0, 0.0], r"significance\[1\]"),
    ([[1.0, 2.0]], None, "one-dimensional"),
])
def test_bad_input_is_a_clear_value_error(algo, values, sig, match):
    with pytest.raises(ValueError, match=match):
        algo(values, sig)


def test_bad_parameters():
    with pytest.raises(ValueError, match="max_buckets"):
        bucketing.exhaustive([1.0], max_buckets=0)
    with pytest.raises(ValueError, match="n_buckets"):
        bucketing.kmeans([1.0], n_buckets=0)
    for algo in (bucketing.kmeans, bucketing.quantile, bucketing.quantized):  # one check serves all three
        with pytest.raises(ValueError, match="n_buckets must be an integer >= 1, got True"):
            algo([1.0], n_buckets=True)
    with pytest.raises(ValueError, match="known methods: greedy, exhaustive"):
        BucketingState("nope")
    with pytest.raises(ValueError, match="accepted"):
        BucketingState("greedy", n_buckets=3)
    s = BucketingState("quantile")
    for bad in (float("nan"), -1.0, float("inf")):
        with pytest.raises(ValueError, match="finite number >= 0"):
            s.add(bad)


def test_ladder_costs_of_several_lists_equal_one_by_one():
    rng = np.random.default_rng(6)
    lists = []
    for _ in range(5):
        n = int(rng.integers(1, 8))
        u = np.sort(rng.choice(500, n, replace=False) + 1.0)
        p = rng.random(n)
        p /= p.sum()
        lists.append((u, p, u - rng.random(n)))
    starts = np.cumsum([0] + [len(u) for u, _, _ in lists[:-1]])
    lengths = np.array([len(u) for u, _, _ in lists])
    for det in (False, True):
        together = bucketing.ladder_costs(*(np.concatenate(x) for x in zip(*lists)), starts, lengths, det)
        assert together == pytest.approx([ladder_cost(u, p, e, det) for u, p, e in lists], rel=1e-12)


def test_bucketing_state_counts_values_above_and_averages_wall_times():
    state = BucketingState("greedy")
    assert state.above(0.0) == (0, math.inf) and state.mean_wall() == 1.0
    for v, w in ((5.0, 10.0), (3.0, 10.0), (5.0, 40.0), (9.0, 10.0)):
        state.add(v, w)
    assert state.above(3.0) == (3, 5.0) and state.above(4.0) == (3, 5.0)
    assert state.above(5.0) == (1, 9.0) and state.above(9.0) == (0, math.inf)
    # significance-weighted (arrival index 1..4): (10 + 20 + 120 + 40) / 10
    assert state.mean_wall() == pytest.approx(19.0)
    # answers asked before follow later additions
    for v in (4.0, 3.5, 2.0, 9.0):
        state.add(v)
    assert state.above(3.0) == (6, 3.5) and state.above(5.0) == (2, 9.0) and state.above(9.0) == (0, math.inf)
    assert state.above(3.0) == BucketingState.above(fresh_copy(state), 3.0)


def fresh_copy(state: BucketingState) -> BucketingState:
    copy = BucketingState("greedy")
    vals, _, timed_sig, count = state._points.arrays()
    for v, c in zip(vals, count):
        for _ in range(int(c)):
            copy.add(float(v))
    return copy
