"""What a task of a given usage is expected to run: the wall time ``auto`` scores with.

``auto`` ranks its candidates by what they would have charged on a category's
past tasks, allocation x wall time.  The past tasks' own wall times make that
ranking noisy without telling much about the tasks to come: when one task of
ten times the usual length fails under one candidate and not under another,
that candidate is charged ten tasks' worth and loses the lead for a hundred
tasks, although the next failure is no likelier to hit a long task.  What the
ranking needs is each past task's *expected* wall time given its usage, which
the category's recent tasks estimate well: wall times are often roughly
log-linear in memory (larger inputs, longer and larger tasks), with
log-normal scatter around that line.

:class:`ExpectedWall` fits log(wall time) on log(usage) by discounted least
squares, the task just observed included (so with few tasks the estimate is
close to the task's own wall time, and its weight shrinks as the history
grows), and returns exp(fit + residual variance / 2), the mean of a
log-normal scatter.  The fitted value is kept within the range of log wall
times seen: the fit never extrapolates a wall time no task had.

The discount is short (``auto``'s ``wall_halflife``, 20 tasks): in real
workflows wall times drift and cluster in time (inputs processed in batches,
nodes and load changing), so a long task says something about its
neighbours, if not about its usage.  With the half-life of ``auto``'s costs
(200 tasks) the fit averaged over phases: replaying lobsterCMSsimulation's
first 4,000 tasks as one group, auto fell from 0.8815 to 0.8776, below the
best reference (0.8783); with 20 tasks it gives 0.8799, and on synthetic
workloads, whose wall times are drawn independently, it kept nearly all of
the gain (module ``predictors.leader``).
"""
from __future__ import annotations

import math


class ExpectedWall:
    """Discounted log-log least squares of wall time (s) on usage (the
    resource's unit) for one category; ``decay`` per task (1: no discount)."""

    __slots__ = ("decay", "n", "sx", "sy", "sxx", "sxy", "syy", "low", "high")

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.n = self.sx = self.sy = self.sxx = self.sxy = self.syy = 0.0
        self.low, self.high = math.inf, -math.inf   # log wall times seen

    def add(self, usage: float, wall: float) -> float:
        """Learn one task (``usage`` >= 0, ``wall`` > 0 s) and return the
        expected wall time (s) of a task of that usage, the task included."""
        d = self.decay
        x, y = math.log(max(usage, 1e-9)), math.log(wall)
        self.n = self.n * d + 1.0
        self.sx = self.sx * d + x
        self.sy = self.sy * d + y
        self.sxx = self.sxx * d + x * x
        self.sxy = self.sxy * d + x * y
        self.syy = self.syy * d + y * y
        if y < self.low:
            self.low = y
        if y > self.high:
            self.high = y
        n = self.n
        mx, my = self.sx / n, self.sy / n
        vx = self.sxx / n - mx * mx
        cxy = self.sxy / n - mx * my
        slope = cxy / vx if vx > 1e-9 else 0.0
        residual = max(0.0, self.syy / n - my * my - slope * cxy)
        fit = min(max(my + slope * (x - mx), self.low), self.high)
        return math.exp(fit + residual / 2)


__all__ = ["ExpectedWall"]
