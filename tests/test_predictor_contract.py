"""The contract every registered predictor must keep (like scikit-learn's check_estimator).

Each check runs over every name in ``predictors.available()``, so a new predictor
is checked as soon as it registers. The oracle takes part everywhere: without a
revealed usage it behaves like max-seen, which keeps the contract.
"""
from __future__ import annotations

import math
import pickle
import random

import numpy as np
import pytest

import predictors
from predictors import AllocationLimitReached

NAMES = predictors.available()
MULTI = ("cores", "memory", "disk")
CAP = {"cores": 16.0, "memory": 8192.0, "disk": 8192.0}


def history(seed: int, n: int = 60) -> list[tuple[str, dict[str, float]]]:
    """A random multi-category, multi-resource history (two modes of memory)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        cat = str(rng.choice(["a", "b", "c"]))
        out.append((cat, {"cores": float(rng.uniform(0.2, 4.0)),
                          "memory": float(rng.choice([300.0, 1500.0]) + rng.normal(0, 30)),
                          "disk": float(rng.uniform(10, 3000)),
                          "wall_time": float(rng.uniform(1, 100))}))
    return out


def drive(p: predictors.Predictor, events: list[tuple[str, dict[str, float]]]) -> list[dict[str, float]]:
    """Replay ``events`` through ``p`` (predict, retry while exceeded, observe);
    returns every allocation given, in order."""
    given = []
    for cat, usage in events:
        alloc = p.predict(cat)
        given.append(alloc)
        for _ in range(64):
            exceeded = [r for r in p.resources if alloc[r] < usage[r]]
            if not exceeded:
                break
            alloc = p.predict(cat, previous=alloc, exceeded=exceeded)
            given.append(alloc)
        p.observe(cat, usage)
    return given


def valid(alloc: dict[str, float], resources: tuple[str, ...], cap: dict[str, float] | None = None) -> None:
    assert set(alloc) == set(resources)
    for r, v in alloc.items():
        assert isinstance(v, float) and math.isfinite(v) and v > 0, (r, v)
        if cap:
            assert v <= cap[r], (r, v, cap[r])


@pytest.mark.parametrize("name", NAMES)
def test_contract(name: str) -> None:
    # unseen category: a valid first allocation, single and multi-resource
    valid(predictors.create(name).predict("never-seen"), ("memory",))
    p = predictors.create(name, resources=MULTI, max_resources=CAP, seed=3)
    valid(p.predict("never-seen"), MULTI, CAP)

    # retries: each exceeded resource strictly grows, the others never shrink,
    # everything stays under the cap, and at the cap the predictor says so.
    events = history(1)
    drive(p, events[:40])
    for exceeded in (["memory"], ["cores"], ["disk", "memory"], ["cores", "memory", "disk"]):
        alloc = p.predict("a")
        for _ in range(100):
            try:
                nxt = p.predict("a", previous=alloc, exceeded=exceeded)
            except AllocationLimitReached as exc:
                assert exc.resource in exceeded and alloc[exc.resource] >= CAP[exc.resource]
                break
            valid(nxt, MULTI, CAP)
            for r in MULTI:
                if r in exceeded:
                    assert nxt[r] > alloc[r], (r, alloc, nxt)
                else:
                    assert nxt[r] >= alloc[r], (r, alloc, nxt)
            alloc = nxt
        else:
            pytest.fail(f"{name}: 100 retries never reached the cap {CAP}")

    # the cap holds for first allocations too, even after usage above it
    big = predictors.create(name, resources=MULTI, max_resources=CAP, seed=0)
    for _ in range(30):
        big.observe("x", {"cores": 64.0, "memory": 50000.0, "disk": 20000.0, "wall_time": 5.0})
    valid(big.predict("x"), MULTI, CAP)

    # same seed, same history -> same allocations; state survives pickling
    events = history(7)
    # (whatever the global random state: a predictor draws only from its own generator)
    a = predictors.create(name, resources=MULTI, max_resources=CAP, seed=11)
    b = predictors.create(name, resources=MULTI, max_resources=CAP, seed=11)
    np.random.seed(1)
    random.seed(1)
    first = drive(a, events)
    np.random.seed(2)
    random.seed(2)
    assert first == drive(b, events)
    c = pickle.loads(pickle.dumps(a))
    rest = history(8, n=30)
    assert drive(a, rest) == drive(c, rest)

    # repr shows the parameters; get_params round-trips through create
    params = a.get_params()
    assert {"resources", "max_resources", "seed"} <= set(params)
    for key in params:
        assert f"{key}=" in repr(a)
    assert predictors.create(name, **params).get_params() == params


@pytest.mark.parametrize("name", NAMES)
def test_bad_input(name: str) -> None:
    p = predictors.create(name, resources=("memory", "cores"))
    for bad in (float("nan"), -1.0, float("inf"), "lots"):
        with pytest.raises(ValueError, match="memory"):
            p.observe("a", {"memory": bad, "cores": 1.0})
        with pytest.raises(ValueError, match="memory"):
            p.predict("a", previous={"memory": bad, "cores": 1.0}, exceeded=["memory"])
    with pytest.raises(ValueError, match="lack 'cores'"):
        p.observe("a", {"memory": 10.0})
    # parameters are validated at first use (scikit-learn style): create stores them
    gpu = predictors.create(name, resources=("gpu",))
    assert gpu.get_params()["resources"] == ("gpu",)
    with pytest.raises(ValueError, match="unknown resource 'gpu'.*known resources"):
        gpu.predict("a")
    with pytest.raises(ValueError, match="unknown resource 'gpu'"):
        p.predict("a", previous={"memory": 1.0, "cores": 1.0}, exceeded=["gpu"])
    with pytest.raises(ValueError, match="max_resources"):
        predictors.create(name, max_resources={"memory": float("nan")}).observe("a", {"memory": 1.0})
    with pytest.raises(ValueError, match="max_resources: unknown resource 'gpu'.*known resources: cores"):
        predictors.create(name, max_resources={"gpu": 1.0}).predict("a")
    for none in ((), 5):
        with pytest.raises(ValueError, match="resources must (name at least one|be resource names)"):
            predictors.create(name, resources=none).predict("a")
    with pytest.raises(ValueError, match="features"):
        p.predict("a", features=[1.0])
    with pytest.raises(ValueError, match="hashable"):
        p.predict(["not", "hashable"])
    with pytest.raises(TypeError, match="accepted parameters"):
        predictors.create(name, no_such_parameter=1)


def test_unknown_name_lists_known() -> None:
    with pytest.raises(ValueError) as info:
        predictors.create("nope")
    for name in ("whole-machine", "max-seen", "quantile", "min-waste", "max-throughput", "oracle"):
        assert name in str(info.value)


def featured(seed: int, n: int = 80) -> list[tuple[str, dict[str, float], dict[str, float]]]:
    """Events whose memory grows with an input size (a feature known in advance)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        size = float(rng.uniform(10, 1000))
        out.append((str(rng.choice(["a", "b"])), {"memory": 200.0 + 3.0 * size + float(rng.normal(0, 20)),
                                                   "wall_time": float(rng.uniform(1, 50))}, {"input_size": size}))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_features_params_and_describe(name: str) -> None:
    # features are accepted by predict and observe (keyword-only) and the retry rule holds with them
    p = predictors.create(name, max_resources={"memory": 8192.0}, seed=2)
    for cat, usage, feats in featured(4):
        alloc = p.predict(cat, features=feats)
        for _ in range(64):
            if alloc["memory"] >= usage["memory"]:
                break
            nxt = p.predict(cat, previous=alloc, exceeded=["memory"], features=feats)
            assert nxt["memory"] > alloc["memory"]
            alloc = nxt
        p.observe(cat, usage, features=feats)
    valid(p.predict("a", features={}), ("memory",), {"memory": 8192.0})
    valid(p.predict("a"), ("memory",), {"memory": 8192.0})      # features are optional
    for bad in ("big", None, float("nan"), float("inf"), True):  # features are finite numbers
        with pytest.raises(ValueError, match=r"features must be finite numbers .* got input_size="):
            p.predict("a", features={"input_size": bad})
        with pytest.raises(ValueError, match=r"features must be finite numbers"):
            p.observe("a", {"memory": 1.0}, features={"input_size": bad})
    assert p.predict("a", previous={"memory": 1.0}, exceeded="memory")["memory"] > 1.0   # one name alone
    with pytest.raises(TypeError):
        p.observe("a", {"memory": 1.0}, {"input_size": 1.0})    # keyword-only
    with pytest.raises(TypeError):
        type(p)(("memory",))                                     # parameters are keyword-only

    # describe() changes nothing: no category appears, later answers are unchanged
    q = predictors.clone(p)
    assert q.get_params() == p.get_params() and q.categories() == []
    twin = predictors.clone(p)
    events = featured(5, 40)
    for r in (q, twin):
        for cat, usage, feats in events:
            r.predict(cat, features=feats)
            r.observe(cat, usage, features=feats)
    before = q.categories()
    assert isinstance(q.describe("never-seen"), dict)
    assert q.describe("a") == q.describe("a")
    assert q.categories() == before
    assert [q.predict(c, features=f) for c, _, f in events] == [twin.predict(c, features=f) for c, _, f in events]

    # set_params changes a parameter verbatim, forgets what was learnt; unknown names are refused
    q.set_params(seed=9)
    assert q.get_params()["seed"] == 9 and q.categories() == []
    with pytest.raises(ValueError, match="accepted parameters"):
        q.set_params(no_such_parameter=1)


def test_importing_predictors_loads_neither_lfm_nor_scikit_learn():
    """predictors stands below lfm; scikit-learn (~1.5 s, ~80 MB) loads only at
    the regression's first robust fit, not in every process that imports lfm's
    executors (their fork server children would carry it in every call's memory)."""
    import subprocess
    import sys
    code = ("import sys, predictors; predictors.create('auto'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lfm', 'sklearn')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
