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
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .exhaustive import exhaustive_binned
from .greedy import greedy_binned
from .kmeans import kmeans_binned
from .optimal import optimal_binned
from .points import Bucket, Points
from .quantile import quantile_binned
from .quantized import quantized_binned

#: The weight channels ``BucketingState`` keeps for every distinct value.
SIGNIFICANCE, TIMED, COUNT = 0, 1, 2

#: method -> (function over binned points, its accepted parameters, the weight
#: channels it takes after the values, in order).  ``significance``: arrival
#: index 1, 2, ... (later tasks weigh more); ``timed``: significance x the
#: task's wall time; ``count``: every task 1.
_METHODS: dict[str, tuple[Callable[..., list[Bucket]], set[str], tuple[int, ...]]] = {
    "greedy": (greedy_binned, {"deterministic"}, (SIGNIFICANCE,)),
    "exhaustive": (exhaustive_binned, {"deterministic", "max_buckets"}, (SIGNIFICANCE,)),
    "kmeans": (kmeans_binned, {"n_buckets", "seed"}, (SIGNIFICANCE,)),
    "quantile": (quantile_binned, {"n_buckets"}, (SIGNIFICANCE,)),
    "quantized": (quantized_binned, {"n_buckets"}, (COUNT,)),
    "optimal": (optimal_binned, {"max_levels", "retry_cost", "tail_ratio", "cap"}, (TIMED, SIGNIFICANCE, COUNT)),
}


def recompute_due(n: int, computed_at: int, growth: float) -> bool:
    """The recompute schedule: with ``n`` points now and a computation made at
    ``computed_at`` points, is another one due? (after every point while
    ``growth * n < 1``, then every ``growth`` fraction of growth)."""
    return n - computed_at >= max(1, int(growth * n))


def _method(method: str, params: Mapping[str, Any]) -> tuple[Callable[..., list[Bucket]], dict[str, Any],
                                                             tuple[int, ...]]:
    if method not in _METHODS:
        raise ValueError(f"unknown bucketing method {method!r}; known methods: {', '.join(_METHODS)}")
    func, accepted, channels = _METHODS[method]
    unknown = set(params) - accepted
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(sorted(unknown))} for {method!r} bucketing; "
                         f"accepted: {', '.join(sorted(accepted | {'recompute_growth'}))}")
    return func, dict(params), channels


class BucketingState:
    """History of one resource of one category, with cached buckets.

    ``method``: one of ``greedy``, ``exhaustive``, ``kmeans``, ``quantile``,
    ``quantized``, ``optimal`` (``bucketing.optimal``: the cost-optimal
    retry ladder over wall-time-weighted history); ``params``: that
    algorithm's keyword parameters (e.g. ``deterministic``, ``max_buckets``,
    ``n_buckets``, ``seed``, ``max_levels``, ``retry_cost``) plus
    ``recompute_growth`` (see the module docstring).  Values are in the
    resource's unit (MB, cores, s).

    Several bucketings of the same history share one set of points and one
    recompute schedule: :meth:`views` builds such a state, and ``buckets(name)``
    reads one of them.
    """

    def __init__(self, method: str, **params: Any) -> None:
        growth = params.pop("recompute_growth", 0.01)
        self._init({method: (method, params)}, growth)

    @classmethod
    def views(cls, views: Mapping[str, tuple[str, Mapping[str, Any]]],
              recompute_growth: float = 0.01) -> BucketingState:
        """A state computing several bucketings of one history on one
        schedule: ``views`` maps a name to ``(method, params)``; the first one
        is what ``buckets()`` returns without a name."""
        if not views:
            raise ValueError("views is empty: name at least one (method, params)")
        self = cls.__new__(cls)
        self._init(views, recompute_growth)
        return self

    def _init(self, views: Mapping[str, tuple[str, Mapping[str, Any]]], growth: Any) -> None:
        if not isinstance(growth, (int, float)) or not 0 <= growth < 1 or math.isnan(growth):
            raise ValueError(f"recompute_growth must be a fraction in [0, 1), got {growth!r}")
        self._views = {name: _method(method, params) for name, (method, params) in views.items()}
        self._default = next(iter(self._views))
        self.method = views[self._default][0]   # the default view's method and validated parameters
        self.params = self._views[self._default][1]
        self.recompute_growth = float(growth)
        self._points = Points(channels=3)
        self._results: dict[str, list[Bucket]] | None = None
        self._computed_at = 0
        self._due = 1   # points at which the schedule next asks for a computation
        self._above: dict[float, list[float]] = {}   # above()'s answers, kept up to date by add()

    def add(self, value: float, wall: float = 1.0) -> None:
        """Add one task's ``value`` (>= 0) that ran ``wall`` seconds (> 0; only
        the ``optimal`` method weighs by it).  Its significance is its arrival
        index (1, 2, ...)."""
        value = float(value)
        if not (value >= 0) or math.isinf(value):
            raise ValueError(f"bucketing value must be a finite number >= 0, got {value!r}")
        if not (wall > 0) or math.isinf(wall):
            raise ValueError(f"bucketing wall time must be a finite number > 0, got {wall!r}")
        points = self._points
        sig = float(points._n + 1)
        points.add(value, sig, sig * wall, 1.0)
        for key, hit in self._above.items():
            if value > key:
                hit[0] += 1
                if value < hit[1]:
                    hit[1] = value

    def __len__(self) -> int:
        return len(self._points)

    @property
    def max(self) -> float:
        """Largest value seen (``-inf`` when empty)."""
        return self._points.max

    def above(self, value: float) -> tuple[int, float]:
        """How many values added are above ``value``, and the smallest of them
        (``inf`` when none).  The answer for a ``value`` asked before is kept
        up to date by :meth:`add` (retries ask at the same few rungs after
        every task)."""
        hit = self._above.get(value)
        if hit is None:
            count, nearest = 0, math.inf
            if len(self._points):
                vals, *weights = self._points.arrays()
                i = int(np.searchsorted(vals, value, side="right"))
                if i < len(vals):
                    count, nearest = int(round(float(weights[COUNT][i:].sum()))), float(vals[i])
            if len(self._above) >= 16:
                self._above.clear()
            hit = self._above[value] = [count, nearest]
        return int(hit[0]), hit[1]

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct values added, ascending, and how many tasks had each."""
        vals, *weights = self._points.arrays()
        return vals, weights[COUNT]

    def mean_wall(self) -> float:
        """Significance-weighted mean of the wall times given to :meth:`add` (s; 1 when empty)."""
        if not len(self._points):
            return 1.0
        _, sig, timed, _ = self._points.arrays()
        return float(timed.sum() / sig.sum())

    @property
    def computed_at(self) -> int:
        """Number of points when the buckets were last computed (0: never)."""
        return self._computed_at

    def stale(self) -> bool:
        """Would ``buckets()`` recompute now?"""
        return self._points._n >= self._due

    def buckets(self, view: str | None = None) -> list[Bucket]:
        """Current buckets of ``view`` (default: the first; ascending uppers,
        probabilities summing to 1); empty list when no value was added yet.
        Every view is recomputed together when the schedule says so."""
        if self.stale():
            arrays = self._points.arrays()
            self._results = {name: func(arrays[0], *(arrays[1 + c] for c in channels), **params)
                             for name, (func, params, channels) in self._views.items()}
            n = self._computed_at = len(self._points)
            # recompute_due only turns true as points are added, and stays true
            due, growth = n + 1, self.recompute_growth
            while not recompute_due(due, n, growth):
                due += 1
            self._due = due
        if self._results is None:
            return []
        try:
            return self._results[self._default if view is None else view]
        except KeyError:
            raise ValueError(f"unknown view {view!r}; known views: {', '.join(self._views)}") from None

    def __repr__(self) -> str:
        if len(self._views) == 1:
            args = "".join(f", {k}={v!r}" for k, v in self.params.items())
            return f"BucketingState({self.method!r}{args}, points={len(self)})"
        return f"BucketingState.views({', '.join(self._views)}, points={len(self)})"
