"""Several predictors' per-category states, the bucketing ones sharing one history.

``auto`` runs four bucketing candidates side by side; each kept its own copy
of the same history and recomputed it on the same schedule.  Reading one
history instead (``bucketing.BucketingState.views``) gives exactly the same
allocations for a quarter of the adds and one recompute pass.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bucketing import BucketingState

from .base import Predictor
from .bucketed import BucketPredictor


class SharedHistories:
    """Per-category states of several predictors, where the bucketing ones on
    one schedule (``recompute_growth``, ``num_sampling_points``) read one
    history: one set of points, every bucketing recomputed at the same point
    counts as it would be on its own, so their allocations are exactly those of
    each on its own.  Whoever holds the states adds every observed value to
    each shared history once, before passing it to the states' ``observe``.

    ``predictors``: set-up predictor objects; ``names``: a name for each (the
    views of a shared history are named after the first predictor computing
    that bucketing).
    """

    def __init__(self, predictors: Sequence[Predictor], names: Sequence[str]) -> None:
        self.predictors = list(predictors)
        groups: dict[tuple[float, int], list[int]] = {}
        for i, p in enumerate(self.predictors):
            if isinstance(p, BucketPredictor):
                groups.setdefault((float(p.recompute_growth), int(p.num_sampling_points)), []).append(i)
        #: (recompute_growth, views, [(index of a predictor, its view)]) per shared history
        self.groups: list[tuple[float, dict[str, Any], list[tuple[int, str]]]] = []
        for (growth, _), members in groups.items():
            if len(members) < 2:
                continue
            views: dict[str, Any] = {}
            named = []
            for i in members:
                spec = self.predictors[i].bucketing()
                view = next((n for n, v in views.items() if v == spec), names[i])
                views[view] = spec
                named.append((i, view))
            self.groups.append((growth, views, named))
        self.shared = {i for _, _, named in self.groups for i, _ in named}

    def states(self, resource: str) -> tuple[list[Any], list[BucketingState]]:
        """Every predictor's state for a new category, and the shared histories."""
        states = [None if i in self.shared else p._new_state(resource) for i, p in enumerate(self.predictors)]
        hubs = []
        for growth, views, members in self.groups:
            hub = BucketingState.views(views, growth)
            hubs.append(hub)
            for i, view in members:
                states[i] = self.predictors[i]._shared_state(resource, hub, view)
        return states, hubs


__all__ = ["SharedHistories"]
