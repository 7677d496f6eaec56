"""Predictors: per-category allocation policies built on `bucketing`, plus replay for prediction studies.

``create(name, **params)`` makes a predictor by name (``available()`` lists them);
each answers ``predict(category, previous=None, exceeded=None)`` and learns from
``observe(category, resources)`` (see :class:`Predictor`). ``replay(trace, names)``
measures how well policies label a recorded or imported trace; ``synthetic(kind, n)``
makes traces for studies and tests.
"""
from predictors.base import KNOWN_RESOURCES, AllocationLimitReached, Predictor
from predictors.registry import available, create, register

# Importing a module registers its predictors.
from predictors import adaptive, baselines, bucketed, tovar  # noqa: F401,E402
from predictors.metrics import SUMMARY_COLUMNS, efficiency, pool_makespan, summarize  # noqa: E402
from predictors.replay import ReplayResult, load_trace, machine_size, replay  # noqa: E402
from predictors.synthetic import KINDS as SYNTHETIC_KINDS, synthetic  # noqa: E402

__all__ = [
    "KNOWN_RESOURCES", "AllocationLimitReached", "Predictor", "available", "create", "register",
    "replay", "ReplayResult", "machine_size", "load_trace", "synthetic", "SYNTHETIC_KINDS",
    "efficiency", "pool_makespan", "summarize", "SUMMARY_COLUMNS",
]
