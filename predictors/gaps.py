"""Where to retry a task that failed just above a value seen.

A new task falls into each gap between consecutive values seen alike
(exchangeability), whatever the gap's width.  So when a task exceeds an
allocation at (or near) a value seen with few values above it, it lies in the
gap just above with probability 1 / (values above + 1).  If the next allocation
a policy would give is far up (say a lone 50x outlier), a smaller step into
that gap first can cost less in expectation.  ``adaptive`` and
``hedged-max-seen`` retry this way.
"""
from __future__ import annotations

import math


def gap_step(previous: float, rung: float, above: int, nearest: float, growth: float,
             penalty: float = 1.0) -> float:
    """The retry after an attempt at ``previous`` failed, where the policy's
    next allocation is ``rung``: ``previous * growth`` instead when that has
    the lower expected charge, else ``rung``.

    ``above``: how many values seen lie above ``previous``; ``nearest``: the
    smallest of them (``inf`` when none); the task is placed log-uniformly in
    the gap between ``previous`` and ``nearest`` with probability
    1 / (above + 1).  ``penalty``: what a failed attempt costs relative to a
    successful one at the same allocation (1 + retry_cost / wall time).  The
    step is taken only while no value seen lies within it (those tasks the
    policy has already weighed) and the gap is wider than the step.
    """
    step = previous * growth
    if not (previous > 0 and rung > step and nearest > step) or math.isinf(nearest):
        return rung
    p = math.log(growth) / math.log(nearest / previous) / (above + 1)
    return step if p * (rung - step) > (1 - p) * step * penalty else rung


__all__ = ["gap_step"]
