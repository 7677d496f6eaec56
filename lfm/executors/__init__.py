"""Executors that run calls with labels chosen by a predictor (local backend and Work Queue).

``AutolabelExecutor`` (a ``concurrent.futures.Executor``) owns labelling, retries,
stats and the trace; a backend runs attempts: :class:`LocalBackend` (this
machine, the default) or :class:`WorkQueueBackend` (a real Work Queue manager).
"""
from __future__ import annotations

from lfm.lazy import lazy_exports

#: public name -> the module that defines it; each is imported on first use, so
#: the Work Queue runner (``lfm.executors.runner``, started once per task) does
#: not pay for the executor, the predictors and pandas
_HOMES = {
    "Attempt": "backend", "Backend": "backend", "Outcome": "backend",
    "limits_from_label": "backend",
    "AutolabelExecutor": "executor", "DEFAULT_CATEGORY": "executor",
    "FeatureError": "features", "call_features": "features",
    "LocalBackend": "local", "machine_capacity": "local",
    "load_work_queue": "wqimport", "work_queue_available": "wqimport",
    "WorkQueueBackend": "workqueue", "WorkQueueTaskError": "workqueue",
}

__all__ = sorted(_HOMES)

__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
