"""``predictors.walls.ExpectedWall``: the expected wall time auto scores its candidates with."""
from __future__ import annotations

import math

import numpy as np
import pytest

from predictors.walls import ExpectedWall


def test_equal_wall_times_are_returned_as_they_are() -> None:
    e = ExpectedWall(1.0)
    assert [e.add(u, 30.0) for u in (100.0, 400.0, 50.0, 3000.0)] == pytest.approx([30.0] * 4, rel=1e-12)


def test_a_power_law_without_scatter_is_recovered_exactly() -> None:
    e = ExpectedWall(0.99)
    rng = np.random.default_rng(0)
    for u in rng.uniform(10, 5000, 50):
        got = e.add(float(u), 2.0 * float(u) ** 0.5)
    assert got == pytest.approx(2.0 * float(u) ** 0.5, rel=1e-6)
    e.add(10_000.0, 200.0)   # exactly on the line: still no scatter
    assert e.add(2_500.0, 100.0) == pytest.approx(100.0, rel=1e-6)


def test_one_long_task_counts_as_its_usage_predicts() -> None:
    # 300 tasks of 900-1000 MB, about 100 s each; then one of 1,000 MB that ran 10,000 s:
    # what it is charged at is close to what a task of its usage runs, not its own 10,000 s
    rng = np.random.default_rng(1)
    e = ExpectedWall(0.5 ** (1 / 200))
    for _ in range(300):
        e.add(float(rng.uniform(900, 1000)), float(rng.lognormal(math.log(100), 0.2)))
    assert 90 < e.add(1000.0, 10_000.0) < 130


def test_a_log_normal_scatter_is_charged_at_its_mean() -> None:
    rng = np.random.default_rng(2)
    e = ExpectedWall(1.0)
    for u in rng.uniform(100, 1000, 4000):
        last = e.add(float(u), float(np.exp(rng.normal(math.log(60), 0.5))))
    assert last == pytest.approx(60 * math.exp(0.5 ** 2 / 2), rel=0.05)


def test_nearly_equal_usages_do_not_extrapolate_beyond_the_wall_times_seen() -> None:
    # two usages 1e-6 apart with very different wall times would give an absurd slope;
    # the fit stays within the wall times seen (times the scatter)
    e = ExpectedWall(1.0)
    e.add(500.0, 10.0)
    e.add(500.000001, 1000.0)
    for u in (0.0, 1e-9, 1.0, 1e6, 1e12):
        got = e.add(u, 100.0)
        assert math.isfinite(got) and 10.0 * 0.99 < got < 1000.0 * 10, (u, got)
