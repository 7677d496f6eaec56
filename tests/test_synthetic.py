"""Synthetic traces: schema, determinism, the shape of each distribution, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import predictors
from predictors import SYNTHETIC_KINDS, synthetic
from predictors.synthetic import FEATURE_KINDS, SUITE


@pytest.mark.parametrize("kind", list(SYNTHETIC_KINDS))
def test_schema_and_determinism(kind: str) -> None:
    df = synthetic(kind, 500, seed=3)
    assert len(df) == 500
    assert {"category", "memory", "cores", "disk", "wall_time", "cpu_time", "status"} <= set(df.columns)
    if kind not in ("many-categories", "pipeline"):
        assert (df["category"] == kind).all()
    assert (df["status"] == "ok").all()
    for col in ("memory", "cores", "disk", "wall_time"):
        assert np.isfinite(df[col]).all() and (df[col] > 0).all(), col
    assert df.equals(synthetic(kind, 500, seed=3))
    if kind in FEATURE_KINDS:
        assert np.isfinite(df["input_size"]).all() and (df["input_size"] >= 1).all()
    else:
        assert "input_size" not in df.columns
    assert not df["memory"].equals(synthetic(kind, 500, seed=4)["memory"])
    # replayable as is
    assert predictors.replay(df, "oracle").summary.iloc[0]["AE_time"] == pytest.approx(1.0)


def test_distribution_shapes() -> None:
    n = 20000
    normal = synthetic("normal", n)["memory"]
    assert normal.mean() == pytest.approx(1000, rel=0.02) and normal.std() == pytest.approx(200, rel=0.05)
    uniform = synthetic("uniform", n)["memory"]
    assert uniform.min() >= 100 and uniform.max() <= 2000 and uniform.mean() == pytest.approx(1050, rel=0.02)
    expo = synthetic("exponential", n)["memory"]
    assert expo.min() >= 50 and expo.mean() == pytest.approx(550, rel=0.03)
    bimodal = synthetic("bimodal", n)["memory"]
    assert ((bimodal > 900) & (bimodal < 1500)).mean() < 0.01          # a gap between the modes
    assert (bimodal < 1200).mean() == pytest.approx(0.5, abs=0.02)
    trimodal = synthetic("trimodal", n)["memory"]
    counts = np.histogram(trimodal, bins=[0, 700, 2000, 10000])[0] / n
    assert counts == pytest.approx([1 / 3] * 3, abs=0.02)
    beta = synthetic("beta", n)["memory"]
    assert beta.min() >= 100 and beta.max() <= 4000
    assert beta.mean() == pytest.approx(100 + 3900 * 2 / 7, rel=0.02)


def test_non_stationary_kinds() -> None:
    n = 30000
    phases = synthetic("phases", n, seed=1)["memory"].to_numpy()
    first, second = phases[: n // 2], phases[n // 2:]
    # bimodal, then trimodal: the third mode (~3000 MB) and the lowest (~300 MB) appear only later
    assert (first > 2500).mean() < 0.01 and (second > 2500).mean() == pytest.approx(1 / 3, abs=0.03)
    assert (first < 380).mean() < 0.01 and (second < 380).mean() == pytest.approx(1 / 3, abs=0.03)
    shifting = synthetic("shifting", n, seed=1)["memory"].to_numpy()
    for part, (low, high) in zip(np.split(shifting, 3), [(500, 2000), (900, 1500), (300, 2600)]):
        assert np.median(part[part < (low + high) / 2]) == pytest.approx(low, rel=0.03)
        assert np.median(part[part >= (low + high) / 2]) == pytest.approx(high, rel=0.03)
    growth = synthetic("growth", n, seed=1)["memory"].to_numpy()
    assert growth[:1000].mean() == pytest.approx(820, rel=0.03)
    assert growth[-1000:].mean() == pytest.approx(1980, rel=0.03)
    # growth is slow: each tenth's mean above the previous one
    assert (np.diff([p.mean() for p in np.split(growth, 10)]) > 0).all()
    tail = synthetic("heavy-tail", n, seed=1)["memory"]
    assert tail.min() >= 100 and tail.max() <= 32768
    assert tail.quantile(0.999) > 20 * tail.median()      # heavy: rare tasks far above the median


def test_many_categories_of_few_tasks() -> None:
    df = synthetic("many-categories", 3000, seed=1)
    sizes = df["category"].value_counts()
    assert sizes.min() >= 1 and sizes.max() <= 30 and 100 <= len(sizes) <= 400
    assert (sizes >= 3).mean() > 0.99                     # only the last one may be cut short
    assert df["category"].str.fullmatch(r"p\d{3}").all()
    # interleaved, not one category after another
    assert (df["category"] != df["category"].shift()).mean() > 0.9
    # each category is tight around its own median, the medians spread widely
    spread = df.groupby("category")["memory"].agg(lambda m: np.log(m).std())
    assert spread.median() < 0.35
    assert df.groupby("category")["memory"].median().agg(lambda m: m.max() / m.min()) > 20
    assert len(synthetic("many-categories", 0)) == 0
    assert synthetic("many-categories", 1)["category"].tolist() == ["p000"]


@pytest.mark.parametrize("kind", ["input-linear", "input-loglinear"])
def test_memory_follows_input_size(kind: str) -> None:
    df = synthetic(kind, 5000, seed=2)
    size, memory = df["input_size"].to_numpy(), df["memory"].to_numpy()
    assert np.median(size) == pytest.approx(500, rel=0.1)
    expected = 200 + 1.5 * size if kind == "input-linear" else 30 * size ** 0.7
    ratio = np.log(memory / expected)
    assert abs(ratio.mean()) < 0.01 and ratio.std() == pytest.approx(0.1, rel=0.1)
    # the feature explains most of the variance in log memory
    assert np.corrcoef(np.log(size), np.log(memory))[0, 1] > 0.9


def test_pipeline_mixes_processes_whose_memory_follows_the_input_or_not() -> None:
    df = synthetic("pipeline", 5000, seed=2)
    sizes = df["category"].value_counts()
    assert sizes.max() <= 200 and 100 <= len(sizes) <= 400 and 15 <= sizes.median() <= 25
    assert df["category"].str.fullmatch(r"s\d{3}").all()
    assert (df["category"] != df["category"].shift()).mean() > 0.9     # interleaved
    assert df["input_size"].between(1, 20000).all()
    # per process, log memory against log input: some follow it closely, some not at all
    big = sizes[sizes >= 30].index
    corr = df[df["category"].isin(big)].groupby("category").apply(
        lambda g: np.corrcoef(np.log(g["input_size"]), np.log(g["memory"]))[0, 1])
    assert (corr > 0.8).mean() > 0.3 and (corr.abs() < 0.3).mean() > 0.15
    assert len(synthetic("pipeline", 0)) == 0 and len(synthetic("pipeline", 1)) == 1


def test_suite_is_fixed_and_covers_every_kind() -> None:
    assert {kind for kind, _, _ in SUITE} == set(SYNTHETIC_KINDS)
    assert all(n == 3000 and seed in (0, 1) for _, n, seed in SUITE)
    # the stationary kinds did not change with the new ones: same draws as before
    assert synthetic("normal", 3, seed=0)["memory"].round(6).tolist() == \
        pytest.approx([1025.146, 973.579, 1128.085], abs=1e-3)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown synthetic kind 'gauss'.*normal, uniform"):
        synthetic("gauss", 10)
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        synthetic("normal", -1)
    assert len(synthetic("normal", 0)) == 0
