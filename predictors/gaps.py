"""Where to retry a task that failed just above a value seen.

A new task falls into each gap between consecutive values seen alike
(exchangeability), whatever the gap's width.  So when a task exceeds an
allocation at (or near) a value seen with few values above it, it lies in the
gap just above with probability 1 / (values above + 1).  If the next allocation
a policy would give is far up (say a lone 50x outlier), a smaller step into
that gap first can cost less in expectation.  ``adaptive`` and
``hedged-max-seen`` retry this way, placing the task log-uniformly within
that gap; ``auto`` places it by a smoothed density of the values seen
(:func:`smoothed_share`), which puts more of it just above the bulk.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr


#: Kernels further than this many bandwidths from the gap add nothing to it.
KERNEL_REACH = 8.0


def smoothed_share(previous: float, step: float, nearest: float, values: np.ndarray,
                   counts: np.ndarray) -> float | None:
    """Of the probability between ``previous`` and ``nearest``, the share at
    or below ``step``, under a Gaussian kernel density of the log of the
    values seen (``values`` ascending, each seen ``counts`` times; bandwidth
    by Silverman's rule of thumb with the robust spread, min(standard
    deviation, interquartile range / 1.349), so that a far outlier does not
    widen it). None when there is no such density (fewer than two values,
    no spread) or it puts nothing in the gap. Exchangeability says how
    likely a task is to lie in a gap between consecutive values seen, not
    where in it: a density says that the bulk's tail reaches just above its
    largest value, while a gap up to a lone outlier is mostly empty."""
    n = float(counts.sum())
    if n < 2 or not 0 < previous < step < nearest:
        return None
    x = np.log(np.maximum(values, 1e-9))
    mean = float(x @ counts) / n
    sd = math.sqrt(float(((x - mean) ** 2) @ counts) / n)
    cum = np.cumsum(counts) / n
    iqr = float(x[np.searchsorted(cum, 0.75)] - x[np.searchsorted(cum, 0.25)])
    spread = min(sd, iqr / 1.349) if iqr > 0 else sd
    if not spread > 0:
        return None
    h = 0.9 * spread * n ** -0.2
    lo, mid, hi = math.log(previous), math.log(step), math.log(nearest)
    i, j = np.searchsorted(x, [lo - KERNEL_REACH * h, hi + KERNEL_REACH * h])
    x, w = x[i:j], counts[i:j]
    at_lo = ndtr((lo - x) / h)
    gap = float((ndtr((hi - x) / h) - at_lo) @ w)
    if not gap > 1e-12:
        return None
    return float((ndtr((mid - x) / h) - at_lo) @ w) / gap


def gap_step(previous: float, rung: float, above: int, nearest: float, growth: float,
             penalty: float = 1.0, share: float | None = None) -> float:
    """The retry after an attempt at ``previous`` failed, where the policy's
    next allocation is ``rung``: ``previous * growth`` instead when that has
    the lower expected charge, else ``rung``.

    ``above``: how many values seen lie above ``previous``; ``nearest``: the
    smallest of them (``inf`` when none); the task lies in the gap between
    ``previous`` and ``nearest`` with probability 1 / (above + 1), there
    within the step with probability ``share`` (default: log-uniformly,
    log(growth) / log(nearest / previous); see :func:`smoothed_share`).
    ``penalty``: what a failed attempt costs relative to a successful one at
    the same allocation (1 + retry_cost / wall time).  The
    step is taken only while no value seen lies within it (those tasks the
    policy has already weighed) and the gap is wider than the step.
    """
    step = previous * growth
    if not (previous > 0 and rung > step and nearest > step) or math.isinf(nearest):
        return rung
    if share is None:
        share = math.log(growth) / math.log(nearest / previous)
    p = share / (above + 1)
    return step if p * (rung - step) > (1 - p) * step * penalty else rung


__all__ = ["gap_step", "smoothed_share"]
