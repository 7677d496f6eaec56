"""predictors.gaps: where a task that failed just above the values seen is retried."""
from __future__ import annotations

import math

import numpy as np
import pytest

from predictors.gaps import gap_step, smoothed_share


def counted(values):
    vals, counts = np.unique(np.asarray(values, dtype=float), return_counts=True)
    return vals, counts.astype(float)


BULK = list(np.round(1000 * np.exp(np.random.default_rng(1).normal(0, 0.3, 14))))


def test_a_lone_outlier_leaves_its_gap_mostly_empty_above_the_bulks_tail() -> None:
    top, outlier = max(BULK), 12_000.0
    share = smoothed_share(top, 2 * top, outlier, *counted(BULK + [outlier]))
    log_uniform = math.log(2) / math.log(outlier / top)
    assert share > 0.7 > 2 * log_uniform
    # one value above: the task lies in that gap with probability 1/2; how much of it the
    # step covers decides between stepping and going to the outlier
    assert gap_step(top, outlier, 1, outlier, 2.0) == outlier
    assert gap_step(top, outlier, 1, outlier, 2.0, share=share) == 2 * top


def test_a_second_mode_with_many_tasks_is_still_the_next_allocation() -> None:
    low = list(np.round(500 * np.exp(np.random.default_rng(2).normal(0, 0.05, 40))))
    high = list(np.round(5000 * np.exp(np.random.default_rng(3).normal(0, 0.05, 40))))
    top, nearest = max(low), min(high)
    share = smoothed_share(top, 2 * top, nearest, *counted(low + high))
    assert 0.0 <= share <= 1.0
    # 40 values above: the gap just above the low mode holds a new task with probability 1/41
    assert gap_step(top, nearest, 40, nearest, 2.0, share=share) == nearest


def test_share_is_a_probability_that_grows_with_the_step() -> None:
    rng = np.random.default_rng(4)
    for _ in range(200):
        values = np.exp(rng.normal(7, rng.uniform(0.05, 2), int(rng.integers(2, 60))))
        vals, counts = counted(np.round(values))
        previous = float(rng.choice(vals))
        nearest = previous * float(rng.uniform(2.5, 100))
        shares = [smoothed_share(previous, previous * g, nearest, vals, counts) for g in (1.2, 2.0, 2.4)]
        if shares[0] is None:
            continue
        assert all(0.0 <= s <= 1.0 for s in shares)
        assert shares[0] <= shares[1] <= shares[2]


@pytest.mark.parametrize("values, previous, step, nearest", [
    ([1000.0], 1000.0, 2000.0, 9000.0),                 # one value: no spread to smooth with
    ([1000.0, 1000.0, 1000.0], 1000.0, 2000.0, 9000.0),  # no spread
    (BULK, 1000.0, 2000.0, 1500.0),                     # the step is not inside the gap
    (BULK, 0.0, 2000.0, 9000.0),
])
def test_no_share_where_there_is_no_density_or_no_gap(values, previous, step, nearest) -> None:
    assert smoothed_share(previous, step, nearest, *counted(values)) is None
