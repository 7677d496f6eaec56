"""Synthetic traces for prediction studies, tests and documentation.

``synthetic(kind, n, seed)`` returns ``n`` tasks in the trace schema
(``category``, ``memory`` MB, ``cores``, ``disk`` MB, ``wall_time`` s, ``cpu_time`` s,
``status``), whose memory follows the distribution ``kind``:

============  ==========================================================
normal        N(1000, 200²) MB
uniform       U(100, 2000) MB
exponential   50 + Exp(mean 500) MB
bimodal       equal mix of N(500, 50²) and N(2000, 150²) MB
trimodal      equal mix of N(300, 30²), N(1200, 100²) and N(3000, 250²) MB
beta          100 + 3900·Beta(2, 5) MB
============  ==========================================================

Memory is clipped to at least 1 MB. Wall time is log-normal (median 60 s) and
grows mildly with memory, so larger tasks weigh more in time-weighted metrics;
cores are log-normal around 1; disk is 50 MB plus a quarter of the memory.
All tasks share the category ``kind`` (so ``group_by`` makes no difference).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd


def _mix(rng: np.random.Generator, n: int, modes: list[tuple[float, float]]) -> np.ndarray:
    which = rng.integers(0, len(modes), size=n)
    means = np.array([m for m, _ in modes])[which]
    sds = np.array([s for _, s in modes])[which]
    return rng.normal(means, sds)


#: kind -> memory sampler (rng, n) -> MB
KINDS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "normal": lambda rng, n: rng.normal(1000.0, 200.0, n),
    "uniform": lambda rng, n: rng.uniform(100.0, 2000.0, n),
    "exponential": lambda rng, n: 50.0 + rng.exponential(500.0, n),
    "bimodal": lambda rng, n: _mix(rng, n, [(500.0, 50.0), (2000.0, 150.0)]),
    "trimodal": lambda rng, n: _mix(rng, n, [(300.0, 30.0), (1200.0, 100.0), (3000.0, 250.0)]),
    "beta": lambda rng, n: 100.0 + 3900.0 * rng.beta(2.0, 5.0, n),
}


def synthetic(kind: str, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` synthetic tasks whose memory follows ``kind`` (see the module docstring),
    deterministic given ``seed``. Raises ``ValueError`` for an unknown kind or n < 0."""
    try:
        sampler = KINDS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown synthetic kind {kind!r}; known kinds: {', '.join(KINDS)}") from None
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"number of tasks n must be an integer >= 0, got {n!r}")
    rng = np.random.default_rng(seed)
    memory = np.maximum(sampler(rng, int(n)), 1.0)
    wall = rng.lognormal(np.log(60.0), 0.5, n) * (memory / 1000.0) ** 0.3
    cores = np.clip(rng.lognormal(0.0, 0.3, n), 0.1, None)
    return pd.DataFrame({
        "category": kind,
        "memory": memory,
        "cores": cores,
        "disk": 50.0 + memory / 4.0,
        "wall_time": wall,
        "cpu_time": wall * cores,
        "status": "ok",
    })
