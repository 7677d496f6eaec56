"""What a policy would have cost a task, once the task's usage is known.

After a task succeeds, its usage is known exactly, so the allocations any
per-(category, resource) state would have given it - its first attempt, then
its retries - and what they would have cost can be computed without running
anything.  ``auto`` charges every candidate this way, and ``regression`` its
fallback.  Costs are in resource-unit x seconds (MB.s for memory).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
    return walk_cost(state, value, features, wall, cap, retry_cost)


def walk_cost(state: Any, value: float, features: Mapping[str, float], wall: float, cap: float,
              retry_cost: float) -> float:
    """:func:`counterfactual` by walking ``state``'s allocations (first, then
    retries), ignoring any ``expected_cost``."""
    a = min(float(state.first(features)), cap)
    cost = 0.0
    for _ in range(64):
        if a >= value or a >= cap:
            break
        cost += a * (wall + retry_cost)
        nxt = float(state.retry(a, features))
        a = min(nxt if nxt > a else (a * 2 if a > 0 else 1.0), cap)
    return cost + a * wall


__all__ = ["counterfactual", "walk_cost"]
