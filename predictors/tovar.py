"""First-allocation policies of Tovar et al., "A Job Sizing Strategy for
High-Throughput Scientific Workflows", IEEE TPDS 2018, with the semantics of
cctools' ``category.c`` (so replays compare with ``../shared/anchors``):

- Usage is kept in a histogram of fixed-width bins (250 MB for memory and disk,
  1 core, 60 s), each bin keyed by its upper end, with the count and the
  accumulated wall time of its tasks.
- Until a category reaches *steady state* — ``steady_after`` (25) completions
  without a new maximum (a usage above the upper end of the largest bin) — every
  task gets the whole machine W (``max_resources``).
- The first allocation is recomputed every ``every`` (25) completions from the
  histogram, over the candidate bins ``a`` (capped at the largest usage seen, a_m):

  * ``min-waste``: minimise E[waste](a) ∝ a·E[T] + a_m·Σ_{r>a} T(r)p(r)
    (the cost of the first attempt plus the retry at a_m for tasks above a);
  * ``max-throughput``: maximise (P(r≤a)·a_m/a + P(r>a)) / (E[T] + Σ_{r>a} T(r)p(r)).

- A failed first attempt is retried at max(largest usage seen, first allocation);
  if that fails too (or before steady state), at W.

Each resource keeps its own state (cctools resets all resources of a category
together; with one resource, the usual case, this is the same).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from predictors.base import KNOWN_RESOURCES, Observation, Predictor
from predictors.registry import register

#: Width of the usage histogram's bins per resource (cctools' defaults).
BIN_WIDTH: dict[str, float] = {"memory": 250.0, "disk": 250.0, "cores": 1.0, "wall_time": 60.0}


class _TovarState:
    """Histogram, steady-state detection and first allocation of one resource."""

    def __init__(self, mode: str, bin_width: float, machine: float | None, cold: float,
                 every: int, steady_after: int) -> None:
        self.mode = mode
        self.bin_width = bin_width
        self.machine = machine
        self.cold = cold
        self.every = every
        self.steady_after = steady_after
        self.bins: dict[float, list[float]] = {}   # upper end -> [count, total wall time]
        self.hist_max = 0.0
        self.max_seen = 0.0
        self.completions = 0        # since the last new maximum
        self.steady = False
        self.first_alloc: float | None = None

    def _bin(self, value: float) -> float:
        return math.ceil(value / self.bin_width) * self.bin_width

    def _whole(self) -> float:
        if self.machine is not None:
            return self.machine
        # No machine size known: the cold default, or the next power of two above what was seen.
        top = max(self.cold, self.max_seen)
        return self.cold * 2 ** math.ceil(math.log2(top / self.cold)) if top > self.cold else self.cold

    def warm(self) -> bool:
        """Past the fixed cold start (the whole machine until steady state)?"""
        return self.steady and self.first_alloc is not None

    def first(self, features: Mapping[str, float] | None = None) -> float:
        if self.steady and self.first_alloc is not None:
            return self.first_alloc
        return self._whole()

    def retry(self, previous: float, features: Mapping[str, float] | None = None) -> float:
        if self.steady and self.first_alloc is not None and self.mode != "max":
            candidate = max(self.max_seen, self.first_alloc)
            if candidate > previous:
                return candidate
        return self._whole()

    def observe(self, value: float, obs: Observation) -> None:
        if not self.steady and value > self._bin(self.hist_max):
            self.first_alloc = None
            self.completions = 0
        self.steady = self.completions >= self.steady_after
        self.max_seen = max(self.max_seen, value)
        entry = self.bins.setdefault(self._bin(value), [0, 0.0])
        entry[0] += 1
        entry[1] += obs.wall_time
        if value > self.hist_max:
            self.hist_max = value
        self.completions += 1
        if self.every > 0 and self.completions % self.every == 0:
            self.first_alloc = self._first_allocation(self.max_seen, self._whole())

    def _first_allocation(self, top: float, cap: float) -> float:
        """Best first allocation over the histogram's bins, given ``top`` (a_m, what
        a task above the first allocation gets next) and capped at ``cap``."""
        keys = np.array(sorted(self.bins))
        counts = np.array([self.bins[k][0] for k in keys], dtype=float)
        times = np.array([self.bins[k][1] for k in keys], dtype=float)
        total = counts.sum()
        # time_above[i] = Σ_{j>i} T_j / N: expected time of tasks that need more than keys[i]
        time_above = (times[::-1].cumsum()[::-1] - times) / total
        tau_mean = times.sum() / total
        if self.mode == "max":
            # the largest usage seen plus a third of a bin, rounded up to a bin end
            return float(min(self._bin(self.max_seen + math.floor(self.bin_width / 3)), cap))
        valid = keys >= 1
        if not valid.any():
            return top
        if self.mode == "min-waste":
            cost = keys * tau_mean + top * time_above
            cost[~valid] = np.inf
            best = keys[int(np.argmin(cost))]
        else:
            below = counts.cumsum()
            with np.errstate(divide="ignore", invalid="ignore"):
                throughput = (below * top / keys + (total - below)) / (tau_mean + time_above)
            throughput[~valid] = -np.inf
            i = int(np.argmax(throughput))
            best = keys[i] if throughput[i] > 0 else top
        return float(min(best, cap))

    def describe(self) -> dict[str, Any]:
        return {"allocation": self.first(), "steady": float(self.steady)}


class _Tovar(Predictor):
    mode = ""

    def __init__(self, *, every: int = 25, steady_after: int = 25, resources: Iterable[str] = ("memory",),
                 max_resources: Mapping[str, float] | None = None, seed: int = 0) -> None:
        super().__init__(resources=resources, max_resources=max_resources, seed=seed)
        self.every = every
        self.steady_after = steady_after

    def _setup(self) -> None:
        super()._setup()
        for name in ("every", "steady_after"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")

    def _new_state(self, resource: str) -> _TovarState:
        return _TovarState(self.mode, BIN_WIDTH[resource], self._caps.get(resource),
                           KNOWN_RESOURCES[resource], int(self.every), int(self.steady_after))


@register("min-waste")
class MinWaste(_Tovar):
    """Tovar et al. (TPDS 2018) first allocation minimising the expected waste
    (see the module docstring for the exact policy).

    every : recompute the first allocation every this many completions (25).
    steady_after : completions without a new maximum before leaving the whole
        machine (25).
    Other parameters: see :class:`predictors.base.Predictor`; ``max_resources``
    is the whole machine W given before steady state.
    """

    mode = "min-waste"


@register("max-throughput")
class MaxThroughput(_Tovar):
    """Tovar et al. (TPDS 2018) first allocation maximising the expected
    throughput (tasks per unit of resource·time; see the module docstring).

    Parameters: as :class:`MinWaste`.
    """

    mode = "max-throughput"


@register("tovar-max")
class TovarMax(_Tovar):
    """cctools' "max" mode, the reference of Tovar et al.: after steady state the
    first allocation is the largest usage seen plus a third of a histogram bin,
    rounded up to a bin end; a failed attempt gets the whole machine.

    Parameters: as :class:`MinWaste`.
    """

    mode = "max"
