"""``adaptive``: lfm's own predictor, an optimal retry ladder learned per category.

What it does differently from the published bucketing policies, and why:

* **The real cost model, solved exactly.**  A replay (or a real run) charges
  every attempt its allocation times the task's wall time.  For a ladder of
  allocations a_1 < a_2 < ... (first attempt a_1, then the next rung after each
  failure) the expected charge of the next task is
  ``sum_j a_j * W(usage > a_{j-1})`` where ``W`` is the share of history above
  a rung.  The ladder minimising it is found by dynamic programming over the
  history's distinct values (O(levels²), levels capped at ``max_levels``
  weighted quantiles), instead of greedy splitting or a fixed candidate grid.
  A deterministic ladder is optimal here: drawing allocations at random cannot
  lower an expected cost below the best fixed ladder.
* **Weights that match the metric.**  A past task weighs its arrival index
  (recency, as in the published significance) times its wall time when the
  observation carries ``wall_time`` (long tasks dominate allocated·time).
* **No blind sampling phase.**  The ladder is used from the first observation
  of a category.  A category never seen before starts from the ladder of all
  categories pooled (a prior); with no history at all, a geometric probe from a
  small first allocation (``cold_start``, by default 1/16 of the published
  default, e.g. 62.5 MB) doubling after each failure, which costs at most about
  4x the usage instead of the fixed 1000 MB that wastes most of a small task's
  allocation.
* **Past the known range** a retry multiplies the failed allocation by
  ``growth`` (2).

The ladder is recomputed on the same schedule as ``bucketing.BucketingState``
(``recompute_growth``: every task below 100 observations, then every 1 % more).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from bucketing import Points

from .base import KNOWN_RESOURCES, Predictor
from .registry import register


def optimal_ladder(values: np.ndarray, weights: np.ndarray, max_levels: int = 96) -> list[float]:
    """The ladder (ascending allocations, the last one = the largest value)
    minimising ``sum_j a_j * W(value > a_{j-1})`` (with ``W(value > a_0)`` the
    total weight) over the binned history ``values`` (ascending, distinct) with
    ``weights``.  When there are more than ``max_levels`` distinct values the
    rungs are chosen among ``max_levels`` weighted quantiles (always including
    the maximum)."""
    k = values.size
    cum = np.cumsum(weights)
    total = cum[-1]
    if k > max_levels:
        idx = np.unique(np.searchsorted(cum, np.arange(1, max_levels + 1) / max_levels * total * (1 - 1e-12)))
        idx = np.minimum(idx, k - 1)
        idx[-1] = k - 1
        levels = values[idx]
        above = total - cum[idx]
    else:
        levels = values
        above = total - cum
    m = levels.size
    best = np.zeros(m)            # best[j]: cost still to pay once tasks <= levels[j] are done
    nxt = np.full(m, m - 1)
    for j in range(m - 2, -1, -1):
        options = above[j] * levels[j + 1:] + best[j + 1:]
        i = int(np.argmin(options))
        best[j] = options[i]
        nxt[j] = j + 1 + i
    start = total * levels + best
    j = int(np.argmin(start))
    ladder = [float(levels[j])]
    while j != m - 1:
        j = int(nxt[j])
        ladder.append(float(levels[j]))
    return ladder


class _History:
    """Binned, weighted history with a cached ladder."""

    __slots__ = ("points", "next_sig", "ladder", "computed_at", "growth", "max_levels")

    def __init__(self, growth: float, max_levels: int) -> None:
        self.points = Points()
        self.next_sig = 1
        self.ladder: list[float] | None = None
        self.computed_at = 0
        self.growth = growth
        self.max_levels = max_levels

    def add(self, value: float, weight: float) -> None:
        self.points.add(value, self.next_sig * weight)
        self.next_sig += 1

    def get_ladder(self) -> list[float] | None:
        n = len(self.points)
        if n == 0:
            return None
        if self.ladder is None or n - self.computed_at >= max(1, int(self.growth * n)):
            self.ladder = optimal_ladder(*self.points.arrays(), max_levels=self.max_levels)
            self.computed_at = n
        return self.ladder


class AdaptiveState:
    """Per-(category, resource) state of :class:`AdaptivePredictor`."""

    __slots__ = ("own", "pool", "cold", "growth", "owner")

    def __init__(self, own: _History, pool: _History, cold: float, growth: float, owner: "AdaptivePredictor") -> None:
        self.own = own
        self.pool = pool
        self.cold = cold
        self.growth = growth
        self.owner = owner

    def _ladder(self) -> list[float] | None:
        ladder = self.own.get_ladder()
        return ladder if ladder is not None else self.pool.get_ladder()

    def first(self) -> float:
        ladder = self._ladder()
        return self.cold if ladder is None else ladder[0]

    def retry(self, previous: float) -> float:
        for rung in self._ladder() or ():
            if rung > previous:
                return rung
        return previous * self.growth if previous > 0 else self.cold

    def observe(self, value: float) -> None:
        weight = self.owner._weight
        self.own.add(value, weight)
        self.pool.add(value, weight)

    def describe(self) -> dict[str, Any]:
        return {"tasks": len(self.own.points), "ladder": self._ladder() or [self.cold]}


@register("adaptive")
class AdaptivePredictor(Predictor):
    """lfm's own predictor: a cost-optimal retry ladder per category (see the
    module docstring).

    Parameters: ``resources``, ``max_resources``, ``seed`` (see ``Predictor``;
    this predictor draws no random numbers);
    ``cold_start`` (None): first allocation per resource when nothing at all is
    known - a mapping resource -> value, by default 1/16 of
    ``KNOWN_RESOURCES`` (1 core for cores);
    ``growth`` (2.0): factor applied to a failed allocation past the ladder;
    ``time_weighted`` (True): weigh past tasks by their wall time when the
    observation has ``wall_time`` (seconds);
    ``max_levels`` (96): candidate rungs for the dynamic programme;
    ``recompute_growth`` (0.01): ladder recompute schedule (0 = every task).
    """

    def __init__(self, resources: Iterable[str] = ("memory",), max_resources: Mapping[str, float] | None = None,
                 seed: int = 0, cold_start: Mapping[str, float] | None = None, growth: float = 2.0,
                 time_weighted: bool = True, max_levels: int = 96, recompute_growth: float = 0.01) -> None:
        super().__init__(resources, max_resources, seed)
        if not isinstance(growth, (int, float)) or not growth > 1 or math.isinf(growth):
            raise ValueError(f"growth must be a number > 1, got {growth!r}")
        if not isinstance(max_levels, (int, np.integer)) or max_levels < 2:
            raise ValueError(f"max_levels must be an integer >= 2, got {max_levels!r}")
        if not isinstance(recompute_growth, (int, float)) or not 0 <= recompute_growth < 1:
            raise ValueError(f"recompute_growth must be a fraction in [0, 1), got {recompute_growth!r}")
        cold = {r: (1.0 if r == "cores" else v / 16) for r, v in KNOWN_RESOURCES.items()}
        for r, v in (cold_start or {}).items():
            if r not in KNOWN_RESOURCES:
                raise ValueError(f"cold_start: unknown resource {r!r}; known resources: {', '.join(KNOWN_RESOURCES)}")
            if not isinstance(v, (int, float)) or not v > 0 or math.isinf(v):
                raise ValueError(f"cold_start[{r!r}] must be a number > 0, got {v!r}")
            cold[r] = float(v)
        self.cold_start = cold_start
        self.growth = growth
        self.time_weighted = time_weighted
        self.max_levels = max_levels
        self.recompute_growth = recompute_growth
        self._cold = cold
        self._pool = {r: _History(recompute_growth, max_levels) for r in self.resources}
        self._weight = 1.0

    def _new_state(self, resource: str) -> AdaptiveState:
        return AdaptiveState(_History(self.recompute_growth, self.max_levels), self._pool[resource],
                             self._cold[resource], self.growth, self)

    def observe(self, category: Any, resources: Mapping[str, float]) -> None:
        """Learn from a successful task (see ``Predictor.observe``); a
        ``wall_time`` entry (seconds) weighs it when ``time_weighted``."""
        weight = 1.0
        if self.time_weighted:
            wall = resources.get("wall_time") if hasattr(resources, "get") else None
            try:
                wall = float(wall) if wall is not None else 0.0
            except (TypeError, ValueError):
                raise ValueError(f"observed wall_time must be a number, got {wall!r}") from None
            if wall > 0 and math.isfinite(wall):
                weight = wall
        self._weight = weight
        super().observe(category, resources)
