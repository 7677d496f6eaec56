"""Several predictors' per-category states, those built on bucketing sharing one history.

``auto`` runs four bucketing candidates and ``adaptive`` side by side; each
kept its own copy of the same history and recomputed it on the same schedule
(``adaptive``'s deterministic greedy ladder is the ``greedy-det`` candidate's
buckets).  Reading one history instead (``bucketing.BucketingState.views``)
gives exactly the same allocations for one add per task and one recompute
pass of each distinct bucketing.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bucketing import BucketingState

from .base import Predictor


class SharedHistories:
    """Per-category states of several predictors, where those that can
    (``_shareable``: the bucketing predictors, and ``adaptive`` when it weighs
    by wall time) on one recompute schedule (``recompute_growth``) read one
    history: one set of points, every distinct bucketing recomputed at the
    same point counts as it would be on its own, so their allocations are
    exactly those of each on its own.

    Protocol for whoever holds the states, after each task: call every hook
    (:meth:`states`) with the task's value and observation, then add the value
    to each shared history once, then pass it to the states' ``observe``.

    ``predictors``: set-up predictor objects; ``names``: a name for each (the
    views of a shared history are named after the first predictor computing
    that bucketing).
    """

    def __init__(self, predictors: Sequence[Predictor], names: Sequence[str]) -> None:
        self.predictors = list(predictors)
        self.names = list(names)
        groups: dict[float, list[int]] = {}
        for i, p in enumerate(self.predictors):
            if getattr(p, "_shareable", False):
                groups.setdefault(float(p.recompute_growth), []).append(i)
        #: (recompute_growth, indices of the predictors reading it) per shared history
        self.groups = [(growth, members) for growth, members in groups.items() if len(members) >= 2]
        self.shared = {i for _, members in self.groups for i in members}
        self._layouts: dict[str, list[tuple[float, dict[str, Any], list[tuple[int, dict[str, str]]]]]] = {}

    def _layout(self, resource: str) -> list[tuple[float, dict[str, Any], list[tuple[int, dict[str, str]]]]]:
        """Per shared history of ``resource``: its schedule, its views (name ->
        (method, params)) and, per member, its own names -> the views'."""
        layout = self._layouts.get(resource)
        if layout is None:
            layout = []
            for growth, members in self.groups:
                views: dict[str, Any] = {}
                named = []
                for i in members:
                    mine = {}
                    for key, spec in self.predictors[i]._shared_views(resource).items():
                        view = next((n for n, v in views.items() if v == spec), f"{self.names[i]}:{key}")
                        views[view] = spec
                        mine[key] = view
                    named.append((i, mine))
                layout.append((growth, views, named))
            self._layouts[resource] = layout
        return layout

    def states(self, resource: str) -> tuple[list[Any], list[BucketingState], list[Callable[[float, Any], None]]]:
        """Every predictor's state for a new category, the shared histories,
        and the hooks to call before a value is added to them (see the class)."""
        states = [None if i in self.shared else p._new_state(resource) for i, p in enumerate(self.predictors)]
        hubs, hooks = [], []
        for growth, views, members in self._layout(resource):
            hub = BucketingState.views(views, growth)
            hubs.append(hub)
            for i, mine in members:
                state = states[i] = self.predictors[i]._shared_state(resource, hub, mine)
                hook = getattr(state, "before_add", None)
                if hook is not None:
                    hooks.append(hook)
        return states, hubs, hooks


__all__ = ["SharedHistories"]
