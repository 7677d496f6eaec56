"""``autolabel_window``: a category's labels are trusted only after N of its
tasks have run.

Parsl's ``autolabel_window=N`` makes Work Queue wait for N tasks of a category
before it decides the category's labels (meanwhile Work Queue runs them on
whole workers). lfm labels a task when it is submitted, so in a burst of
apps every one of a new category would get the predictor's cold-start label,
outgrow it and be retried. Here, while a category has fewer than N
successful tasks, at most N of its tasks are in flight: the others wait on
this side and are submitted (and labelled, from what those tasks used) as the
first ones finish. A task that fails or is retried does not count as
successful but frees its place, so a category never stalls.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future


class CategoryWindow:
    """Admission of each category's tasks until ``size`` of them succeeded."""

    def __init__(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"autolabel_window must be an integer >= 1 (tasks of a category), "
                             f"got {size!r}")
        self.size = size
        self._lock = threading.Lock()
        self._ok: dict[str, int] = {}          # category -> successful tasks so far
        self._running: dict[str, int] = {}     # category -> admitted tasks not yet finished
        self._waiting: dict[str, deque] = {}   # category -> submissions not yet admitted

    def submit(self, category: str, start: Callable[[], Future]) -> None:
        """Call ``start()`` now, or once the category's window admits it.
        ``start`` submits the task and returns its Future; it must not raise
        (a submission that fails is a Future that failed)."""
        with self._lock:
            if not self._admit(category):
                self._waiting.setdefault(category, deque()).append(start)
                return
        self._start(category, start)

    def waiting(self) -> int:
        """Submissions held back, all categories."""
        with self._lock:
            return sum(len(q) for q in self._waiting.values())

    def drop(self) -> list[Callable[[], Future]]:
        """Forget every held-back submission (at shutdown); they are returned."""
        with self._lock:
            dropped = [s for q in self._waiting.values() for s in q]
            self._waiting.clear()
        return dropped

    def _admit(self, category: str) -> bool:
        """Caller holds the lock. True when a task of ``category`` may start now
        (it is then counted as running)."""
        if self._ok.get(category, 0) >= self.size:
            return True
        if self._running.get(category, 0) < self.size - self._ok.get(category, 0):
            self._running[category] = self._running.get(category, 0) + 1
            return True
        return False

    def _start(self, category: str, start: Callable[[], Future]) -> None:
        future = start()  # never raises: a failed submission is a failed Future
        future.add_done_callback(
            lambda f: self._finished(category, ok=not f.cancelled() and f.exception() is None))

    def _finished(self, category: str, ok: bool) -> None:
        released = []
        with self._lock:
            if self._running.get(category, 0) > 0:
                self._running[category] -= 1
            if ok:
                self._ok[category] = self._ok.get(category, 0) + 1
            queue = self._waiting.get(category)
            while queue and self._admit(category):
                released.append(queue.popleft())
        for start in released:
            self._start(category, start)
