"""A small, real predictor for the executor tests: memory starts at ``first`` MB
(or the largest usage seen) and doubles on each retry; cores start at 1, disk at
500 MB. Predictable labels make the executors' retries easy to check."""
from __future__ import annotations

from predictors.base import Predictor


class Doubling(Predictor):
    def __init__(self, *, resources=("memory",), max_resources=None, seed=0, first=100.0):
        super().__init__(resources=resources, max_resources=max_resources, seed=seed)
        self.first = first

    def _new_state(self, resource):
        return _State({"cores": 1.0, "memory": self.first, "disk": 500.0}[resource])


class _State:
    def __init__(self, first):
        self.start = first
        self.seen = []

    def first(self, features=None):
        return max(self.seen, default=self.start)

    def retry(self, previous, features=None):
        return previous * 2

    def observe(self, value, obs=None):
        self.seen.append(value)

    def describe(self):
        return {"first": self.first()}
