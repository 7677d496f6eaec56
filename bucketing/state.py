"""Incremental bucketing of one resource of one category.

``BucketingState`` keeps the binned history (``bucketing.points.Points``) and
caches the buckets.  The reference implementation recomputes after every task;
here the buckets are recomputed lazily, when ``buckets()`` is asked for and the
history has grown by at least ``recompute_growth`` (a fraction, default 1 %)
since the last computation - so every task while the history is below 100
points, then every ~1 % more points.  ``recompute_growth=0`` recomputes after
every point (exactly the reference schedule).

How close the schedule is to recomputing after every task, measured by
replaying public traces with ``greedy-det`` (deterministic, so the difference
is the schedule alone; AE = absolute efficiency, reference semantics):

=========================  ============  ===========  =============
trace, grouping            every task    1 % growth   tasks/s (1 %)
=========================  ============  ===========  =============
bioblast, per category     0.8933        0.8930       ~60,000
bioblast, one group        0.8120        0.8131       ~50,000
blast-medium, per category 0.8504        0.8529       ~10,000
lobster[:4000], per cat.   0.8906        0.8903       ~23,000
=========================  ============  ===========  =============

With recompute after every task the answers equal cctools' own C code
exactly (same AE, retries and tasks retried on these rows); with the schedule
AE moves by at most 0.0025 either way, while lobsterCMSsimulation's 30,630
tasks replay at 30,000-120,000 tasks/s depending on the algorithm.  The
greedy predictors use a 0.4 % schedule (``predictors.bucketed``): greedy-det
then gives bioblast 0.8938 / 0.8120, lobster[:4000] 0.8909 / 0.8770 (per
category / one group), at or above the reference on every anchor row.
"""
from __future__ import annotations

import math
from typing import Any

from .exhaustive import exhaustive_binned
from .greedy import greedy_binned
from .kmeans import kmeans_binned
from .points import Bucket, Points
from .quantile import quantile_binned

_METHODS = {
    "greedy": (greedy_binned, {"deterministic"}),
    "exhaustive": (exhaustive_binned, {"deterministic", "max_buckets"}),
    "kmeans": (kmeans_binned, {"n_buckets", "seed"}),
    "quantile": (quantile_binned, {"n_buckets"}),
}


def recompute_due(n: int, computed_at: int, growth: float) -> bool:
    """The recompute schedule: with ``n`` points now and a computation made at
    ``computed_at`` points, is another one due? (after every point while
    ``growth * n < 1``, then every ``growth`` fraction of growth)."""
    return n - computed_at >= max(1, int(growth * n))


class BucketingState:
    """History of one resource of one category, with cached buckets.

    ``method``: one of ``greedy``, ``exhaustive``, ``kmeans``, ``quantile``;
    ``params``: that algorithm's keyword parameters (e.g. ``deterministic``,
    ``max_buckets``, ``n_buckets``, ``seed``) plus ``recompute_growth`` (see
    the module docstring).  Values are in the resource's unit (MB, cores, s).
    """

    def __init__(self, method: str, **params: Any) -> None:
        if method not in _METHODS:
            raise ValueError(f"unknown bucketing method {method!r}; known methods: {', '.join(_METHODS)}")
        growth = params.pop("recompute_growth", 0.01)
        if not isinstance(growth, (int, float)) or not 0 <= growth < 1 or math.isnan(growth):
            raise ValueError(f"recompute_growth must be a fraction in [0, 1), got {growth!r}")
        func, accepted = _METHODS[method]
        unknown = set(params) - accepted
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))} for {method!r} bucketing; "
                             f"accepted: {', '.join(sorted(accepted | {'recompute_growth'}))}")
        self.method = method
        self.params = params
        self.recompute_growth = float(growth)
        self._func = func
        self._points = Points()
        self._next_sig = 1
        self._buckets: list[Bucket] | None = None
        self._computed_at = 0

    def add(self, value: float, weight: float = 1.0) -> None:
        """Add one task's value (>= 0).  Its significance is its arrival index
        (1, 2, ...) times ``weight`` (> 0, e.g. the task's wall time)."""
        value = float(value)
        if not (value >= 0) or math.isinf(value):
            raise ValueError(f"bucketing value must be a finite number >= 0, got {value!r}")
        if not (weight > 0) or math.isinf(weight):
            raise ValueError(f"bucketing weight must be a finite number > 0, got {weight!r}")
        self._points.add(value, self._next_sig * weight)
        self._next_sig += 1

    def __len__(self) -> int:
        return len(self._points)

    @property
    def max(self) -> float:
        """Largest value seen (``-inf`` when empty)."""
        return self._points.max

    def stale(self) -> bool:
        """Would ``buckets()`` recompute now?"""
        n = len(self._points)
        if self._buckets is None:
            return n > 0
        return recompute_due(n, self._computed_at, self.recompute_growth)

    def buckets(self) -> list[Bucket]:
        """Current buckets (ascending uppers, probabilities summing to 1);
        empty list when no value was added yet."""
        if self.stale():
            self._buckets = self._func(*self._points.arrays(), **self.params)
            self._computed_at = len(self._points)
        return self._buckets or []

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"BucketingState({self.method!r}{args}, points={len(self)})"
