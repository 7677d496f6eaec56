"""Synthetic traces: schema, determinism, the shape of each distribution, bad input."""
from __future__ import annotations

import numpy as np
import pytest

import predictors
from predictors import SYNTHETIC_KINDS, synthetic


@pytest.mark.parametrize("kind", list(SYNTHETIC_KINDS))
def test_schema_and_determinism(kind: str) -> None:
    df = synthetic(kind, 500, seed=3)
    assert len(df) == 500
    assert {"category", "memory", "cores", "disk", "wall_time", "cpu_time", "status"} <= set(df.columns)
    assert (df["category"] == kind).all() and (df["status"] == "ok").all()
    for col in ("memory", "cores", "disk", "wall_time"):
        assert np.isfinite(df[col]).all() and (df[col] > 0).all(), col
    assert df.equals(synthetic(kind, 500, seed=3))
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


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown synthetic kind 'gauss'.*normal, uniform"):
        synthetic("gauss", 10)
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        synthetic("normal", -1)
    assert len(synthetic("normal", 0)) == 0
