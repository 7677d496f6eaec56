"""Predictors: per-category allocation policies built on `bucketing`, plus replay for prediction studies.

``create(name, **params)`` makes a predictor by name (``available()`` lists them);
each answers ``predict(category, previous=None, exceeded=None, *, features=None)``
and learns from ``observe(category, resources, *, features=None)`` (see
:class:`Predictor`); ``clone(p)`` is a fresh copy with the same parameters.
``replay(df, names)`` measures how well policies label a recorded or imported trace
(a DataFrame: read files with ``lfm.trace.read_trace``); ``synthetic(kind, n)``
makes traces for studies and tests.
"""
from predictors.base import (KNOWN_RESOURCES, AllocationLimitReached, Observation, Predictor, check_resources,
                             clone)
from predictors.registry import available, check_name, create, register

# Importing a module registers its predictors.
from predictors import adaptive, baselines, bucketed, regression, tovar  # noqa: F401,E402
from predictors import auto  # noqa: F401,E402  (after the candidates it chooses among)
from predictors.metrics import SUMMARY_COLUMNS, efficiency, pool_makespan, summarize  # noqa: E402
from predictors.replay import ReplayResult, replay  # noqa: E402
from predictors.replay_tasks import FEATURE_COLUMNS, machine_size  # noqa: E402
from predictors.synthetic import KINDS as SYNTHETIC_KINDS, synthetic  # noqa: E402

__all__ = [
    "KNOWN_RESOURCES", "AllocationLimitReached", "Observation", "Predictor", "available", "check_name",
    "check_resources", "clone", "create", "register", "replay", "ReplayResult", "machine_size", "FEATURE_COLUMNS",
    "synthetic", "SYNTHETIC_KINDS",
    "efficiency", "pool_makespan", "summarize", "SUMMARY_COLUMNS",
]
