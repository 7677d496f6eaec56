"""``regression``: labels from what is known before a task runs (its features).

Per category and resource, usage is regressed on the task's features
(``input_size`` in MB, or any numeric feature the caller gives), and the
allocation is the regression's answer times an online-calibrated safety factor.

Model, and why:

* **a robust regression on the log scale**: ``log(usage) ~ a + sum_k b_k z_k + c_k z_k^2``
  with ``z_k = sign(f_k) log1p(|f_k|)`` for each feature ``f_k`` (any real value;
  ``input_size`` is >= 0).  Memory of data-processing tasks is typically a fixed
  overhead plus something proportional (or sub-linear) in the input, spread
  multiplicatively; on the log scale the spread is roughly constant, so one
  multiplicative offset fits small and large tasks alike.  A pure power law
  (c = 0) bends away from "overhead + linear" where the two terms are of one
  size; the quadratic term follows that bend (on a 100 MB + 4 x input_size
  workload with 5 % noise AE goes from 0.77 to 0.80).  The fit is
  scikit-learn's ``HuberRegressor`` (squared loss near the fit, absolute loss
  beyond ``epsilon`` scale units, the scale estimated jointly) on the last
  ``window`` featured tasks: real traces carry a few tasks whose usage has
  nothing to do with their inputs (a failed download, a cached result, a
  retried task that found half its work done), and under least squares each
  of them pulls the whole curve, so every other task's allocation and the
  offset ladder below.  The Huber fit bounds that pull and stays least squares on
  clean data.  It is refitted on a schedule (every featured task up to
  ``REFIT_EVERY_TASK``, then each time the category's featured tasks grew by
  ``recompute_growth``, 10 %), warm-started from the previous fit, on
  standardised columns: 5-10 ms a fit of 500 tasks here, about 60 fits over
  10,000 tasks of a category (the offset ladder, recalibrated at every fit, absorbs
  what the curve has not caught up with).
* **A ladder of safety offsets, calibrated online**: every prediction's
  residual ``log(usage) - prediction`` is recorded *before* the task is learnt
  (a prequential, out-of-sample residual).  The allocations are the prediction
  times the rungs of a ladder of offsets (first attempt, then each retry):
  ``bucketing.optimal_ladder``, the ladder that would have cost least on those
  residuals, each attempt charged its allocation x wall time and each failure
  ``retry_cost`` more, tasks weighted by recency.  This is the replay's own
  metric, so the ladder trades waste against retries as the workload demands,
  and a failure climbs to the next offset that covered a share of the past
  tasks worth its cost (past the top rung, doubling).  The residuals are
  smoothed with a logistic kernel (Silverman's bandwidth) before the ladder is
  fitted to them: with a few dozen residuals, rungs fitted to the step function
  sit just above single residuals, which the next task does not know about.
  On the synthetic input-linear/-loglinear members and data seeds 0-9 (22
  workloads, retry cost 0 and 30 s) the regression's mean AE went from
  0.7656/0.7546 (one offset on the step function, retries at twice the
  allocation or at the largest residual seen, whichever larger: one outlier
  among the residuals made every retry that far) to 0.7861/0.7728 (the ladder on
  the smoothed residuals; 0.7701/0.7601 with one smoothed offset); on
  54-process Nextflow-like traces (about 27 tasks per process, ``rchar`` as
  ``input_size``) auto went from 0.73-0.84 to 0.74-0.88.
  Until 30 featured tasks per feature the fit is a straight line on the log
  scale (the quadratic term needs that many to be pinned down).
* **Only where it pays**: each category also runs a feature-less fallback
  policy (``fallback``, by default ``adaptive``) in shadow.  Both are charged
  their counterfactual cost on every task of the category (the usage is known
  after a success, so what each would have allocated, and how often it would
  have failed, is exact).  A task is answered by the model of its own set of
  features (the finite numeric ones it has: a category whose tasks carry
  ``input_size`` only sometimes keeps one model for the tasks with it, and one
  per other set), once that model has ``min_tasks`` tasks, while some feature
  has varied over the tasks it was fitted on, and while the regression's
  discounted cost is below the fallback's; otherwise the fallback answers.
  (A model whose features never varied - every task of ``blastall`` on
  blast-medium reads the same 4,876 MB - is a mean and an offset ladder fitted
  to a handful of tasks, which knows nothing the feature-less policies do
  not; on that category it led after 6 tasks and failed on the 8th.)

Where the fallback answers, its retries follow it.
"""
from __future__ import annotations

import math
import warnings
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from bucketing import recompute_due

from .base import Observation, Predictor, check_retry_cost
from .counterfactual import counterfactual
from .offsets import calibrate_ladder
from .registry import create, register

#: Featured tasks per feature before the quadratic terms are fitted.
QUADRATIC_AFTER = 30
#: Featured tasks of a model up to which it is refitted after every task.
REFIT_EVERY_TASK = 20
#: How far (log scale) a prediction may go past the usages its fit saw: a factor of
#: 100.  A fit on a few tasks whose inputs nearly coincide has a slope of any size,
#: and the next task's input extrapolated it to 10^300 MB.
EXTRAPOLATION = math.log(100.0)
#: Huber's threshold between squared and absolute loss, in estimated scale units
#: (scikit-learn's default: 95 % efficiency of least squares on Gaussian noise).
HUBER_EPSILON = 1.35


def feature_row(features: Mapping[str, float]) -> tuple[tuple[str, ...], list[float]] | None:
    """(names, transformed values) of the usable features of one task: finite
    numbers (bools excluded), sorted by name, each as ``sign(v) log1p(|v|)``;
    None when there is none."""
    names, values = [], []
    for k in sorted(features):
        v = features[k]
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            continue
        v = float(v)
        if math.isnan(v) or math.isinf(v):
            continue
        names.append(k)
        values.append(math.copysign(math.log1p(abs(v)), v))
    return (tuple(names), values) if names else None


class _Regression:
    """Robust log-log regression of one resource on one set of features, with a
    calibrated ladder of offsets (module docstring)."""

    __slots__ = ("width", "rows", "ys", "coef", "n", "fitted_at", "resid", "scale", "walls", "ladder",
                 "growth", "retry_cost", "window", "huber", "informative", "bounds")

    def __init__(self, width: int, growth: float, retry_cost: float, window: int) -> None:
        self.width = width                    # number of features
        self.rows: deque[list[float]] = deque(maxlen=window)   # z_k, then z_k^2, per featured task
        self.ys: deque[float] = deque(maxlen=window)
        self.coef: np.ndarray | None = None   # intercept, then one per column of rows
        self.n = 0
        self.fitted_at = 0
        self.resid: list[float] = []
        self.scale: list[float] = []   # exp(prediction) at the time of each residual
        self.walls: list[float] = []
        self.ladder = [0.0]   # log offsets: first attempt, then each retry
        self.growth = growth
        self.retry_cost = retry_cost
        self.window = window
        self.huber: Any = None  # made at the first robust fit (see _huber)
        self.informative = False  # has any feature varied over the fitted tasks?
        self.bounds = (-math.inf, math.inf)   # of a prediction (log usage), see EXTRAPOLATION

    def answers(self, min_tasks: int) -> bool:
        """May this fit answer: fitted on at least ``min_tasks`` tasks whose features varied?"""
        return self.n >= min_tasks and self.coef is not None and self.informative

    def row(self, z: list[float]) -> np.ndarray:
        """The design row of transformed features ``z``: 1, z_k..., z_k^2..."""
        return np.array([1.0] + z + [v * v for v in z])

    def raw(self, x: np.ndarray) -> float | None:
        """Predicted log usage (no offset), None before the first fit; within
        ``EXTRAPOLATION`` of the log usages the fit saw."""
        if self.coef is None:
            return None
        lo, hi = self.bounds
        return min(max(float(x @ self.coef), lo), hi)

    @property
    def delta(self) -> float:
        """The first attempt's log offset."""
        return self.ladder[0]

    def allocation(self, x: np.ndarray) -> float | None:
        p = self.raw(x)
        return None if p is None else math.exp(min(p + self.ladder[0], 700.0))

    def retry(self, x: np.ndarray, previous: float) -> float:
        p = self.raw(x)
        if p is not None:
            for offset in self.ladder:
                a = math.exp(min(p + offset, 700.0))
                if a > previous * (1 + 1e-9):
                    return a
        return previous * 2

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
        self.rows.append(x[1:].tolist())
        self.ys.append(y)
        self.n += 1
        if self.n <= REFIT_EVERY_TASK or recompute_due(self.n, self.fitted_at, self.growth):
            self._fit()

    def _fit(self) -> None:
        w = self.width
        X = np.array(self.rows)
        y = np.array(self.ys)
        # the quadratic terms only once there are enough tasks to pin them down
        # (QUADRATIC_AFTER per feature); before, a straight line on the log scale
        cols = X.shape[1] if len(y) >= QUADRATIC_AFTER * w else w
        X = X[:, :cols]
        coef = np.zeros(1 + 2 * w)
        vary = np.ptp(X, axis=0) > 0
        self.informative = bool(vary.any())
        if len(y) < 3 + cols or np.ptp(y) == 0 or not vary.all():
            # too few tasks (or a constant column) for a robust fit: the mean, plus
            # least squares on the columns that vary
            coef[0] = y.mean()
            if self.informative and len(y) > 1:
                Xv = X[:, vary] - X[:, vary].mean(axis=0)
                b = np.linalg.lstsq(Xv, y - y.mean(), rcond=None)[0]
                coef[1:1 + cols][vary] = b
                coef[0] -= X[:, vary].mean(axis=0) @ b
        else:
            # standardised columns: L-BFGS converges in about half the iterations
            mu, sd = X.mean(axis=0), X.std(axis=0)
            if self.huber is None:
                self.huber = _huber()
            # warm start from the previous fit, unless the columns changed
            self.huber.set_params(warm_start=getattr(self.huber, "coef_", np.empty(0)).shape[0] == cols)
            with warnings.catch_warnings():
                # a fit stopped at max_iter is still a fine estimate for allocations
                warnings.simplefilter("ignore", _convergence_warning())
                self.huber.fit((X - mu) / sd, y)
            b = self.huber.coef_ / sd
            coef[0] = self.huber.intercept_ - mu @ b
            coef[1:1 + cols] = b
        self.coef = coef
        self.bounds = (float(y.min()) - EXTRAPOLATION, float(y.max()) + EXTRAPOLATION)
        self.fitted_at = self.n
        if self.resid:
            self._calibrate()

    def _calibrate(self) -> None:
        self.ladder = calibrate_ladder(np.asarray(self.resid), np.asarray(self.scale), np.asarray(self.walls),
                                       self.retry_cost)


class RegressionState:
    """Per-(category, resource) state: one regression per set of features its
    tasks carry, the fallback in shadow, and the two policies' discounted
    counterfactual costs."""

    __slots__ = ("owner", "fallback", "models", "reg_cost", "fb_cost", "featured", "cap", "decay")

    def __init__(self, owner: "RegressionPredictor", resource: str, fallback: Any) -> None:
        self.owner = owner
        self.fallback = fallback
        self.models: dict[tuple[str, ...], _Regression] = {}
        self.reg_cost = 0.0
        self.fb_cost = 0.0
        self.featured = 0
        self.cap = owner._caps.get(resource, math.inf)
        self.decay = owner._decay

    def _ready(self, features: Mapping[str, float]) -> tuple[_Regression, np.ndarray] | None:
        """The model of this task's features and its design row, if it may answer."""
        if not features:
            return None
        key = feature_row(features)
        if key is None:
            return None
        model = self.models.get(key[0])
        if model is None or not model.answers(self.owner._min_tasks):
            return None
        return model, model.row(key[1])

    def answering(self) -> str | None:
        """``None`` when the fit may answer (some feature set has a fit that has cost
        less than the fallback), else the registered name of the fallback, which then
        answers every task."""
        if self.reg_cost < self.fb_cost and any(m.answers(self.owner._min_tasks) for m in self.models.values()):
            return None
        return self.owner.fallback

    def first(self, features: Mapping[str, float]) -> float:
        ready = self._ready(features) if self.reg_cost < self.fb_cost else None
        if ready is not None:
            return ready[0].allocation(ready[1])
        return self.fallback.first(features)

    def retry(self, previous: float, features: Mapping[str, float]) -> float:
        ready = self._ready(features) if self.reg_cost < self.fb_cost else None
        if ready is not None:
            return ready[0].retry(ready[1], previous)
        return self.fallback.retry(previous, features)

    def observe(self, value: float, obs: Observation) -> None:
        feats = obs.features
        wall = obs.wall_time
        ready = self._ready(feats)
        if ready is not None:
            reg = ready[0].charge(ready[1], value, wall, self.cap)
            fb = counterfactual(self.fallback, value, feats, wall, self.cap, self.owner._retry_cost)
            self.reg_cost = self.reg_cost * self.decay + reg
            self.fb_cost = self.fb_cost * self.decay + fb
        self.fallback.observe(value, obs)
        key = feature_row(feats) if feats else None
        if key is not None:
            model = self.models.get(key[0])
            if model is None:
                o = self.owner
                model = self.models[key[0]] = _Regression(len(key[0]), o._growth, o._retry_cost, o._window)
            model.add(model.row(key[1]), value, wall)
            self.featured += 1

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"featured_tasks": float(self.featured)}
        if self.models:
            names, model = max(self.models.items(), key=lambda kv: kv[1].n)
            if model.coef is not None:
                out["features"] = float(len(names))   # of the model with the most tasks (coef: 1, z_k..., z_k^2...)
                out["offset"] = model.delta
                out["coef"] = [float(c) for c in model.coef]
        return out


@register("regression")
class RegressionPredictor(Predictor):
    """Feature-aware labels: per category, log-log regression of usage on the
    task's features with an online-calibrated ladder of safety offsets, used only where it
    beats the feature-less ``fallback`` on the category's own history (module
    docstring).

    Parameters (keyword-only): ``resources``, ``max_resources``, ``seed`` (see
    ``Predictor``); ``fallback`` ("adaptive"): the registered name of the
    feature-less policy used where the regression is not; ``min_tasks`` (5):
    tasks with a given set of features before their model may answer;
    ``retry_cost`` (0.0): seconds charged per failed attempt (see ``adaptive``);
    ``halflife`` (200): tasks after which a past cost counts half when comparing
    the regression with the fallback; ``window`` (500): featured tasks the fit
    uses and residuals the offset ladder is calibrated on (the latest ones);
    ``recompute_growth`` (0.1): refit each time a model's tasks grew by this
    fraction (after every task up to 20; 0 = after every task).
    """

    def __init__(self, *, resources: Iterable[str] = ("memory",), max_resources: Mapping[str, float] | None = None,
                 seed: int = 0, fallback: str = "adaptive", min_tasks: int = 5, retry_cost: float = 0.0,
                 halflife: float = 200.0, window: int = 500, recompute_growth: float = 0.1) -> None:
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
        self._fallback = create(self.fallback, resources=self._resources, max_resources=self.max_resources,
                                seed=self.seed)
        if "retry_cost" in self._fallback.get_params():
            self._fallback.set_params(retry_cost=self._retry_cost)
        self._fallback._setup()
        self._fallback._rng = self._rng
        self._min_tasks = int(self.min_tasks)
        self._window = int(self.window)
        self._growth = float(rg)
        self._decay = 0.5 ** (1.0 / float(self.halflife))

    def _new_state(self, resource: str) -> RegressionState:
        return RegressionState(self, resource, self._fallback._new_state(resource))


def _huber() -> Any:
    """A new scikit-learn ``HuberRegressor`` with this module's settings.
    scikit-learn is imported here, at the first robust fit, not with
    ``predictors``: it costs about 1.5 s and 80 MB, which every process that
    imports lfm's executors (and every fork server child of it) would pay."""
    from sklearn.linear_model import HuberRegressor
    return HuberRegressor(epsilon=HUBER_EPSILON, alpha=1e-6, max_iter=200)


def _convergence_warning() -> type[Warning]:
    from sklearn.exceptions import ConvergenceWarning
    return ConvergenceWarning
