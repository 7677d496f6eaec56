"""``regression``: labels from what is known before a task runs (its features).

Per category and resource, usage is regressed on the task's features
(``input_size`` in MB, or any numeric feature the caller gives), and the
allocation is the regression's answer times an online-calibrated safety factor.

Model, and why:

* **least squares on the log scale**: ``log(usage) ~ a + sum_k b_k z_k + c_k z_k^2``
  with ``z_k = log1p(feature_k)``.  Memory of data-processing tasks is
  typically a fixed overhead plus something proportional (or sub-linear) in
  the input, spread multiplicatively; on the log scale the spread is roughly
  constant, so one multiplicative offset fits small and large tasks alike.  A
  pure power law (c = 0) bends away from "overhead + linear" where the two
  terms are of one size; the quadratic term follows that bend (on a
  100 MB + 4 x input_size workload with 5 % noise AE goes from 0.77 to 0.80).  The fit is ordinary least squares on running
  sufficient statistics (``X'X``, ``X'y`` with a small ridge term), refitted in
  closed form on the ``recompute_growth`` schedule: O(d^2) per task, no
  iteration, so it keeps up with replays of 10,000s of tasks per second.
  (scikit-learn's ``HuberRegressor``/``QuantileRegressor`` refit from scratch
  cost 1-50 ms each, which an online predictor cannot pay after every task;
  robustness comes instead from the calibrated offset below, which is chosen
  on the out-of-sample residuals.)
* **Safety offset calibrated online**: every prediction's residual
  ``log(usage) - prediction`` is recorded *before* the task is learnt (a
  prequential, out-of-sample residual).  The offset d is the one that would
  have cost least on those residuals, each task charged
  ``exp(pred + d) * (wall + retry_cost)`` when it fails plus the retry at
  ``max(2 exp(pred + d), exp(pred + max residual))`` times wall, else
  ``exp(pred + d) * wall``, weighted by recency.  This is the replay's own
  metric, so the offset trades waste against retries as the workload demands.
  Until 30 featured tasks per feature the fit is a straight line on the log
  scale (the quadratic term needs that many to be pinned down).
* **Only where it pays**: each category also runs a feature-less fallback
  policy (``fallback``, by default ``adaptive``) in shadow.  Both are charged
  their counterfactual cost on every task of the category (the usage is known
  after a success, so what each would have allocated, and how often it would
  have failed, is exact).  The regression answers only for tasks that have
  every feature the category's model uses, once ``min_tasks`` featured tasks
  were seen, and while its discounted cost is below the fallback's; otherwise
  the fallback answers.

After a failure the next allocation is the larger of twice the failed one and
the regression's answer with the largest residual seen (or the fallback's retry).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from bucketing import recompute_due

from .adaptive import check_retry_cost
from .base import Observation, Predictor
from .registry import create, register

#: Ridge term added to the normal equations' diagonal (keeps a one-valued feature solvable).
RIDGE = 1e-6
#: Featured tasks per feature before the quadratic terms are fitted.
QUADRATIC_AFTER = 30


class _Regression:
    """Online log-log least squares of one resource with a calibrated offset."""

    __slots__ = ("names", "xtx", "xty", "coef", "n", "fitted_at", "resid", "scale", "walls", "delta", "rmax",
                 "growth", "retry_cost", "window", "_linear")

    def __init__(self, names: tuple[str, ...], growth: float, retry_cost: float, window: int) -> None:
        d = 2 * len(names) + 1
        self.names = names
        self.xtx = np.eye(d) * RIDGE
        self.xty = np.zeros(d)
        self.coef: np.ndarray | None = None
        self.n = 0
        self.fitted_at = 0
        self.resid: list[float] = []
        self.scale: list[float] = []   # exp(prediction) at the time of each residual
        self.walls: list[float] = []
        self.delta = 0.0
        self.rmax = 0.0
        self.growth = growth
        self.retry_cost = retry_cost
        self.window = window
        self._linear = np.array([0] + [1 + 2 * i for i in range(len(names))])  # 1, log features (no squares)

    def row(self, features: Mapping[str, float]) -> np.ndarray | None:
        x = [1.0]
        for name in self.names:
            v = features.get(name)
            if v is None or not v >= 0 or v == math.inf:
                return None
            lv = math.log1p(v)
            x.append(lv)
            x.append(lv * lv)
        return np.array(x)

    def raw(self, x: np.ndarray) -> float | None:
        """Predicted log usage (no offset), None before the first fit."""
        if self.coef is None:
            return None
        return float(x @ self.coef)

    def allocation(self, x: np.ndarray) -> float | None:
        p = self.raw(x)
        return None if p is None else math.exp(min(p + self.delta, 700.0))

    def retry(self, x: np.ndarray, previous: float) -> float:
        p = self.raw(x)
        top = math.exp(min(p + self.rmax, 700.0)) * 1.0001 if p is not None else 0.0
        return max(previous * 2, top)

    def charge(self, x: np.ndarray, value: float, wall: float, cap: float) -> float | None:
        """What this model's allocation would have cost a task using ``value``."""
        a = self.allocation(x)
        if a is None:
            return None
        a = min(a, cap)
        cost = 0.0
        for _ in range(64):
            if a >= value or a >= cap:
                break
            cost += a * (wall + self.retry_cost)
            a = min(self.retry(x, a), cap)
        return cost + a * wall

    def add(self, x: np.ndarray, value: float, wall: float) -> None:
        y = math.log(max(value, 1e-3))
        p = self.raw(x)
        if p is not None:  # out-of-sample residual, before learning this task
            self.resid.append(y - p)
            self.scale.append(math.exp(min(p, 700.0)))
            self.walls.append(wall)
            if len(self.resid) > self.window:
                del self.resid[0], self.scale[0], self.walls[0]

        self.xtx += np.outer(x, x)
        self.xty += x * y
        self.n += 1
        if self.coef is None or recompute_due(self.n, self.fitted_at, self.growth):
            self._fit()

    def _fit(self) -> None:
        # the quadratic terms only once there are enough tasks to pin them down
        # (QUADRATIC_AFTER per feature); before, a straight line on the log scale
        full = self.n >= QUADRATIC_AFTER * len(self.names)
        use = self._linear
        a, b = (self.xtx, self.xty) if full else (self.xtx[np.ix_(use, use)], self.xty[use])
        try:
            coef = np.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            coef = np.linalg.lstsq(a, b, rcond=None)[0]
        if full:
            self.coef = coef
        else:
            self.coef = np.zeros(self.xty.size)
            self.coef[use] = coef
        self.fitted_at = self.n
        if self.resid:
            self._calibrate()

    def _calibrate(self) -> None:
        r = np.asarray(self.resid)
        s = np.asarray(self.scale)
        w = np.asarray(self.walls)
        rec = np.arange(1, r.size + 1, dtype=float)      # recency weights

        self.rmax = float(r.max())
        cands = np.unique(np.quantile(r, np.linspace(0.5, 1.0, 33)))
        e = np.exp(cands)[:, None]                        # candidates x tasks
        fail = r[None, :] > cands[:, None]
        retry = np.maximum(2 * e, math.exp(self.rmax) * 1.0001)
        cost = e * w + fail * (e * self.retry_cost + retry * w)
        total = (cost * (s * rec)[None, :]).sum(axis=1)
        self.delta = float(cands[int(np.argmin(total))])


class RegressionState:
    """Per-(category, resource) state: the regression, the fallback in shadow,
    and the two policies' discounted counterfactual costs."""

    __slots__ = ("owner", "resource", "fallback", "model", "reg_cost", "fb_cost", "featured", "cap", "decay",
                 "_x")

    def __init__(self, owner: "RegressionPredictor", resource: str, fallback: Any) -> None:
        self.owner = owner
        self.resource = resource
        self.fallback = fallback
        self.model: _Regression | None = None
        self.reg_cost = 0.0
        self.fb_cost = 0.0
        self.featured = 0
        self.cap = owner._caps.get(resource, math.inf)
        self.decay = owner._decay
        self._x: np.ndarray | None = None

    def _row(self, features: Mapping[str, float]) -> np.ndarray | None:
        if self.model is None or not features:
            return None
        return self.model.row(features)

    def uses_regression(self, features: Mapping[str, float]) -> bool:
        x = self._row(features)
        return (x is not None and self.featured >= self.owner._min_tasks and self.model.coef is not None
                and self.reg_cost < self.fb_cost)

    def first(self, features: Mapping[str, float]) -> float:
        if self.uses_regression(features):
            return self.model.allocation(self._row(features))
        return self.fallback.first(features)

    def retry(self, previous: float, features: Mapping[str, float]) -> float:
        if self.uses_regression(features):
            return self.model.retry(self._row(features), previous)
        return self.fallback.retry(previous, features)

    def observe(self, value: float, obs: Observation) -> None:
        feats = obs.features
        wall = obs.wall_time
        if self.model is None and feats:
            names = tuple(sorted(k for k, v in feats.items() if isinstance(v, (int, float)) and v >= 0))
            if names:
                self.model = _Regression(names, self.owner._growth, self.owner._retry_cost, self.owner._window)
        x = self._row(feats)
        if x is not None and self.featured >= self.owner._min_tasks and self.model.coef is not None:
            reg = self.model.charge(x, value, wall, self.cap)
            fb = counterfactual(self.fallback, value, feats, wall, self.cap, self.owner._retry_cost)
            self.reg_cost = self.reg_cost * self.decay + reg
            self.fb_cost = self.fb_cost * self.decay + fb
        self.fallback.observe(value, obs)
        if x is not None:
            self.model.add(x, value, wall)
            self.featured += 1

    def describe(self) -> dict[str, Any]:
        out = {"featured_tasks": float(self.featured)}
        if self.model is not None and self.model.coef is not None:
            out["offset"] = self.model.delta
            out["coef"] = [float(c) for c in self.model.coef]
        return out


def counterfactual(state: Any, value: float, features: Mapping[str, float], wall: float, cap: float,
                   retry_cost: float) -> float:
    """What ``state``'s allocations would have cost a task using ``value`` for
    ``wall`` s: every failed attempt at (wall + retry_cost), the successful one
    at wall; allocations capped at ``cap``. A probabilistic state with an
    ``expected_cost`` method gives its expectation over its draws (no draw is
    made, so a lucky draw cannot make it look better than it is)."""
    expected = getattr(state, "expected_cost", None)
    if expected is not None:
        e = expected(value, wall, cap, retry_cost)
        if e is not None:
            return e
    a = min(float(state.first(features)), cap)
    cost = 0.0
    for _ in range(64):
        if a >= value or a >= cap:
            break
        cost += a * (wall + retry_cost)
        nxt = float(state.retry(a, features))
        a = min(nxt if nxt > a else (a * 2 if a > 0 else 1.0), cap)
    return cost + a * wall


@register("regression")
class RegressionPredictor(Predictor):
    """Feature-aware labels: per category, log-log regression of usage on the
    task's features with an online-calibrated safety offset, used only where it
    beats the feature-less ``fallback`` on the category's own history (module
    docstring).

    Parameters (keyword-only): ``resources``, ``max_resources``, ``seed`` (see
    ``Predictor``); ``fallback`` ("adaptive"): the registered name of the
    feature-less policy used where the regression is not; ``min_tasks`` (5):
    featured tasks of a category before its regression may answer;
    ``retry_cost`` (0.0): seconds charged per failed attempt (see ``adaptive``);
    ``halflife`` (200): tasks after which a past cost counts half when comparing
    the regression with the fallback; ``window`` (2000): residuals kept for the
    offset; ``recompute_growth`` (0.01): refit schedule (0 = every task).
    """

    def __init__(self, *, resources: Iterable[str] = ("memory",), max_resources: Mapping[str, float] | None = None,
                 seed: int = 0, fallback: str = "adaptive", min_tasks: int = 5, retry_cost: float = 0.0,
                 halflife: float = 200.0, window: int = 2000, recompute_growth: float = 0.01) -> None:
        super().__init__(resources=resources, max_resources=max_resources, seed=seed)
        self.fallback = fallback
        self.min_tasks = min_tasks
        self.retry_cost = retry_cost
        self.halflife = halflife
        self.window = window
        self.recompute_growth = recompute_growth

    def _setup(self) -> None:
        super()._setup()
        if not isinstance(self.min_tasks, (int, np.integer)) or isinstance(self.min_tasks, bool) or self.min_tasks < 2:
            raise ValueError(f"min_tasks must be an integer >= 2, got {self.min_tasks!r}")
        if not isinstance(self.window, (int, np.integer)) or isinstance(self.window, bool) or self.window < 10:
            raise ValueError(f"window must be an integer >= 10, got {self.window!r}")
        if not isinstance(self.halflife, (int, float)) or not self.halflife > 0:
            raise ValueError(f"halflife must be a number of tasks > 0, got {self.halflife!r}")
        rg = self.recompute_growth
        if not isinstance(rg, (int, float)) or not 0 <= rg < 1:
            raise ValueError(f"recompute_growth must be a fraction in [0, 1), got {rg!r}")
        if self.fallback == "regression" or not isinstance(self.fallback, str):
            raise ValueError(f"fallback must name a feature-less registered predictor, got {self.fallback!r}")
        self._retry_cost = check_retry_cost(self.retry_cost)
        params = {"resources": self._resources, "max_resources": self.max_resources, "seed": self.seed}
        if self.fallback == "adaptive":
            params["retry_cost"] = self._retry_cost
        self._fallback = create(self.fallback, **params)
        self._fallback._setup()
        self._fallback._rng = self._rng
        self._min_tasks = int(self.min_tasks)
        self._window = int(self.window)
        self._growth = float(rg)
        self._decay = 0.5 ** (1.0 / float(self.halflife))

    def _new_state(self, resource: str) -> RegressionState:
        return RegressionState(self, resource, self._fallback._new_state(resource))
