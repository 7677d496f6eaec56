"""Which label each attempt of a call gets: the executor's labelling rules.

The first attempt's label comes from the predictor (raised to the published
cold start during a burst of a new category, declared resources taking
precedence) or, with ``autolabel=False``, from the declared hard limits or a
whole worker. After an exhaustion the next label is the predictor's, strictly
larger in every exceeded resource in what the backend really grants, or there
is none and the reason says why. Every label is capped to the backend's
largest worker.

Units: cores a float, memory and disk in MB, wall_time in seconds.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from lfm.executors.backend import Attempt, Outcome, allocation
from lfm.executors.calls import Task, amount
from lfm.resources import ResourceExhaustion

if TYPE_CHECKING:
    import threading

    from lfm.executors.backend import Backend
    from predictors.base import Predictor

#: Least first label of a call submitted while another call of its category,
#: which has no measurement yet, is in flight (the published cold start:
#: cores, memory MB, disk MB); see "Bursts of a new category" in
#: :class:`lfm.executors.AutolabelExecutor`.
BURST_FLOOR = {"cores": 1.0, "memory": 1000.0, "disk": 1000.0}


class Labelling:
    """The labelling rules of :class:`lfm.executors.AutolabelExecutor`, which
    provides ``predictor``, ``backend``, ``resources``, ``autolabel``,
    ``max_retries`` and ``_lock`` (the lock that guards the predictor)."""

    predictor: "Predictor"
    backend: "Backend"
    resources: tuple[str, ...]
    autolabel: bool
    max_retries: int
    _lock: "threading.RLock"

    def _largest(self) -> dict[str, float]:
        """The backend's largest worker now (live on Work Queue without
        ``workers=`` or ``max_resources``: the largest connected one)."""
        return {k: float(v) for k, v in (self.backend.max_resources() or {}).items()}

    def _cap(self, label: Mapping[str, float]) -> dict[str, float]:
        largest = self._largest()
        return {r: min(float(v), largest.get(r, float(v))) for r, v in label.items()}

    def _first_label(self, task: Task, burst: bool) -> dict[str, float]:
        """The first attempt's label; ``burst``: another call of the category,
        which has no measurement yet, is in flight. Caller holds the lock."""
        if self.autolabel:
            label = self.predictor.predict(task.category, features=task.features)
            if burst:
                for r, floor in BURST_FLOOR.items():
                    if r in label:
                        label[r] = max(label[r], floor)
            label.update(task.declared)
        elif task.declared:
            label = dict(task.declared)
        else:
            largest = self._largest()
            label = {r: largest[r] for r in self.resources if r in largest}
        return self._cap(label)

    def _beyond_largest(self, task: Task) -> ResourceExhaustion | None:
        """With ``autolabel=False`` declared resources are hard limits: above
        the largest worker the call can never run, and fails at once."""
        if self.autolabel or not task.declared:
            return None
        largest = self._largest()
        over = {r: v for r, v in task.declared.items() if r in largest and v > largest[r]}
        if not over:
            return None
        said = ", ".join(amount(r, v) for r, v in sorted(over.items()))
        offers = ", ".join(amount(r, largest[r]) for r in sorted(largest))
        return ResourceExhaustion(
            f"task {task.id} ({task.category}) declares {said} as hard limits (autolabel=False), "
            f"more than the largest worker offers ({offers}): it can never run",
            exceeded=over, limits=dict(task.declared), attempts=[])

    def _next_label(self, task: Task, attempt: Attempt,
                    outcome: Outcome) -> tuple[dict[str, float] | None, str]:
        """The label of the next attempt after an exhaustion, or (None, why)
        when there is none."""
        if not self.autolabel:
            return None, "declared resources are hard limits when autolabel=False"
        if attempt.number > self.max_retries:
            return None, f"max_retries={self.max_retries} spent"
        exceeded = set(outcome.exceeded) or set(self.resources) & set(attempt.label)
        unlabelled = sorted(exceeded - set(self.resources))
        if unlabelled:
            return None, (f"exceeded {', '.join(unlabelled)}, which was declared but is not labelled by "
                          f"the predictor (resources={self.resources})")
        largest = self._largest()
        for r in sorted(exceeded):
            if r in largest and attempt.label.get(r, 0.0) >= largest[r]:
                return None, (f"{r} exceeded {attempt.label[r]:g}, already the largest any worker "
                              f"offers ({largest[r]:g}): the call can never fit")
        # what the attempt really had (Work Queue: whole MB and cores), so that a
        # larger label is larger in what the backend grants too
        granted = allocation(self.backend, attempt.label)
        previous = {r: granted[r] for r in self.resources if r in attempt.label}
        try:
            with self._lock:
                label = self.predictor.predict(task.category, previous=previous, exceeded=exceeded,
                                               features=task.features)
        except Exception as exc:  # AllocationLimitReached, or a predictor's own refusal
            return None, f"no larger label: {exc}"
        extra = {r: v for r, v in attempt.label.items() if r not in label}
        label = self._cap({**extra, **label})
        grown = allocation(self.backend, label)
        stuck = [r for r in exceeded if not grown.get(r, 0.0) > granted.get(r, 0.0)]
        if stuck:
            return None, (f"{', '.join(sorted(stuck))} cannot grow beyond "
                          f"{', '.join(f'{attempt.label[r]:g}' for r in sorted(stuck))} "
                          f"(largest worker: {largest})")
        return label, ""


def exhaustion(task: Task, attempt: Attempt, outcome: Outcome, why: str) -> ResourceExhaustion:
    """The error a call's future fails with when its last attempt was
    exhausted and there is no next label (``why``)."""
    exceeded = dict(outcome.exceeded)
    over = ", ".join(f"{r} (label {v:g})" for r, v in exceeded.items()) or "its label"
    return ResourceExhaustion(
        f"task {task.id} ({task.category}) exceeded {over} on attempt {attempt.number}; {why}",
        resources=outcome.resources, exceeded=exceeded, limits=attempt.label,
        attempts=list(task.attempts))
