"""Executors that run calls with labels chosen by a predictor (local backend and Work Queue).

``AutolabelExecutor`` (a ``concurrent.futures.Executor``) owns labelling, retries,
stats and the trace; a backend runs attempts: :class:`LocalBackend` (this
machine, the default) or :class:`WorkQueueBackend` (a real Work Queue manager).
"""
from lfm.executors.backend import Attempt, Backend, Outcome, limits_from_label
from lfm.executors.executor import DEFAULT_CATEGORY, AutolabelExecutor
from lfm.executors.local import LocalBackend, machine_capacity
from lfm.executors.wqimport import load_work_queue, work_queue_available

__all__ = [
    "AutolabelExecutor", "Attempt", "Backend", "DEFAULT_CATEGORY", "LocalBackend", "Outcome",
    "WorkQueueBackend", "WorkQueueTaskError", "limits_from_label", "load_work_queue",
    "machine_capacity", "work_queue_available",
]


def __getattr__(name: str):
    # the Work Queue backend is imported on first use only (it is not needed locally)
    if name in ("WorkQueueBackend", "WorkQueueTaskError"):
        from lfm.executors import workqueue
        return getattr(workqueue, name)
    raise AttributeError(f"module 'lfm.executors' has no attribute {name!r}")
