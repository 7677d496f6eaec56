"""Per-category accounting of an executor's attempts: allocated·time versus
used·time per resource, and the absolute efficiency (AE) they give.

Units: ``alloc_<r>_s`` and ``used_<r>_s`` are resource × wall seconds (MB·s for
memory and disk, core·s for cores). "Allocated" is what the backend really
granted the attempt, not the label: Work Queue grants whole cores, so a
0.3-core label is charged 1 core there; the local backend packs fractions,
so it is charged 0.3 (see ``Outcome.granted``). A failed attempt (exhausted or error) is
charged its allocation for the wall time it ran and contributes no use, as in
``predictors.replay``; ``ae_<r>`` = Σ used·time / Σ allocated·time.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


class StatsBook:
    """Thread-safe accumulator; :meth:`frame` renders the ``stats()`` table."""

    def __init__(self, resources: Iterable[str]) -> None:
        self.resources = tuple(resources)
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, float]] = {}

    def _row(self, category: str) -> dict[str, float]:
        row = self._rows.get(category)
        if row is None:
            row = {"tasks": 0, "attempts": 0, "retries": 0, "tasks_retried": 0,
                   "ok": 0, "exhausted": 0, "errors": 0, "wall_time_s": 0.0}
            for r in self.resources:
                row[f"alloc_{r}_s"] = 0.0
                row[f"used_{r}_s"] = 0.0
            self._rows[category] = row
        return row

    def task_submitted(self, category: str) -> None:
        with self._lock:
            self._row(category)["tasks"] += 1

    def attempt(self, category: str, number: int, status: str, label: Mapping[str, float],
                used: Mapping[str, float], wall_time: float) -> None:
        """Account one finished attempt (``number`` 1 for a first attempt;
        ``status`` ok / exhausted / error; ``wall_time`` in s). ``label``: what
        the attempt was allocated (the backend's grant over its label); use is
        credited up to it."""
        with self._lock:
            row = self._row(category)
            row["attempts"] += 1
            if number > 1:
                row["retries"] += 1
            if number == 2:
                row["tasks_retried"] += 1
            row[{"ok": "ok", "exhausted": "exhausted"}.get(status, "errors")] += 1
            row["wall_time_s"] += wall_time
            for r in self.resources:
                if r in label:
                    row[f"alloc_{r}_s"] += float(label[r]) * wall_time
                if status == "ok" and r in used:
                    # a use above the label (cores may burst) is not credited beyond it
                    value = float(used[r])
                    if r in label:
                        value = min(value, float(label[r]))
                    row[f"used_{r}_s"] += value * wall_time

    def frame(self, describe: Callable[[str], Any] | None = None) -> "pd.DataFrame":
        """One row per category (index ``category``): counts, Σ alloc·time,
        Σ used·time and ``ae_<r>`` per resource, and ``label`` (the predictor's
        state for the category, from ``describe``)."""
        import pandas as pd

        with self._lock:
            rows = {c: dict(v) for c, v in self._rows.items()}
        records = []
        for category, row in rows.items():
            for r in self.resources:
                alloc = row[f"alloc_{r}_s"]
                row[f"ae_{r}"] = row[f"used_{r}_s"] / alloc if alloc > 0 else float("nan")
            if describe is not None:
                try:
                    row["label"] = describe(category)
                except Exception as exc:  # stats must not fail because a predictor cannot describe
                    row["label"] = f"<describe failed: {exc}>"
            records.append({"category": category, **row})
        columns = ["category", "tasks", "attempts", "retries", "tasks_retried", "ok", "exhausted",
                   "errors", "wall_time_s"]
        for r in self.resources:
            columns += [f"alloc_{r}_s", f"used_{r}_s", f"ae_{r}"]
        if describe is not None:
            columns.append("label")
        frame = pd.DataFrame.from_records(records, columns=columns)
        return frame.set_index("category")
