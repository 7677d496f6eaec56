"""Safety-offset ladders from out-of-sample residuals (used by ``regression``).

A prediction's residual is ``log(usage) - log(prediction)``; a ladder of
log-scale offsets turns one prediction into the allocations of a first
attempt and its retries (prediction x exp(offset), ascending).
"""
from __future__ import annotations

import math

import numpy as np

from bucketing import optimal_ladder


def logistic_bandwidth(r: np.ndarray) -> float:
    """Scale of a logistic kernel for the sample ``r``: Silverman's rule of thumb
    (0.9 min(sd, IQR / 1.349) n^-1/5, the IQR term dropped where it is 0) over
    1.7, the logistic scale whose distribution is closest to a unit normal;
    0 for fewer than 2 values or no spread."""
    if r.size < 2:
        return 0.0
    q1, q3 = np.quantile(r, (0.25, 0.75))
    sd = float(r.std())
    spread = min(sd, float(q3 - q1) / 1.349) or sd
    return 0.9 * spread * r.size ** -0.2 / 1.7


#: Offsets on which the smoothed residuals are laid out for the ladder.
LADDER_GRID = 96


def calibrate_ladder(resid: np.ndarray, scale: np.ndarray, walls: np.ndarray, retry_cost: float, *,
                     smooth: bool = True) -> list[float]:
    """The ladder of log-scale offsets (ascending) that would have cost least
    on the residuals ``resid`` (log usage - prediction) of tasks whose
    predictions were ``scale`` (MB) and that ran ``walls`` seconds, later tasks
    weighing more (weights 1, 2, ...): :func:`bucketing.optimal_ladder` with
    each attempt charged its allocation (prediction x exp(offset)) x wall and
    each failed one ``retry_cost`` seconds more.  With ``smooth`` the residuals
    are first spread by a logistic kernel (:func:`logistic_bandwidth`) over
    ``LADDER_GRID`` offsets from 2 bandwidths below the smallest to 3 above the
    largest; without, or when the residuals do not spread, the ladder's rungs
    are among the residuals themselves."""
    recency = np.arange(1, resid.size + 1, dtype=float)
    time_w = scale * walls * recency
    fail_w = scale * recency
    h = logistic_bandwidth(resid) if smooth else 0.0
    if h > 0:
        grid = np.linspace(float(resid.min()) - 2 * h, float(resid.max()) + 3 * h, LADDER_GRID)
        below = 1.0 / (1.0 + np.exp(np.clip((resid[None, :] - grid[:, None]) / h, -50.0, 50.0)))

        def mass(w: np.ndarray) -> np.ndarray:
            cdf = below @ w
            cdf[-1] = w.sum()
            return np.diff(cdf, prepend=0.0)

        time_m, fail_m = mass(time_w), mass(fail_w)
        keep = time_m > time_w.sum() * 1e-9
        keep[-1] = True
        offsets, time_w, fail_w = grid[keep], time_m[keep], fail_m[keep]
    else:
        offsets, inverse = np.unique(resid, return_inverse=True)
        time_w, fail_w = np.bincount(inverse, time_w), np.bincount(inverse, fail_w)
    ladder = optimal_ladder(np.exp(offsets), time_w, LADDER_GRID, fail_w, retry_cost)
    return [math.log(a) for a in ladder]


__all__ = ["LADDER_GRID", "calibrate_ladder", "logistic_bandwidth"]
