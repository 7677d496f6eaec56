"""Synthetic traces for prediction studies, tests and documentation.

``synthetic(kind, n, seed)`` returns ``n`` tasks in the trace schema
(``category``, ``memory`` MB, ``cores``, ``disk`` MB, ``wall_time`` s, ``cpu_time`` s,
``status``; the feature kinds add ``input_size`` MB), in submission order, whose
memory follows ``kind``.

Stationary kinds (one category, named after the kind; i.i.d. draws):

============  ==========================================================
normal        N(1000, 200²) MB
uniform       U(100, 2000) MB
exponential   50 + Exp(mean 500) MB
bimodal       equal mix of N(500, 50²) and N(2000, 150²) MB
trimodal      equal mix of N(300, 30²), N(1200, 100²) and N(3000, 250²) MB
beta          100 + 3900·Beta(2, 5) MB
============  ==========================================================

Non-stationary, heavy-tailed and many-category kinds:

================  ======================================================
phases            the first half ``bimodal``, the second half ``trimodal``
                  (a workload that changes phase: new modes appear)
shifting          two modes (relative spread 8 %) that jump at each third
                  of the trace: 500/2000, then 900/1500, then 300/2600 MB
growth            slow growth: N(µ, (0.05µ)²) with µ rising linearly
                  from 800 to 2000 MB over the trace
heavy-tail        100 + 300·Pareto(shape 1.3) MB (Lomax; a few tasks need
                  tens of times the median), capped at 32768 MB
many-categories   categories ``p000``, ``p001``... of 3 to 30 tasks each
                  (sizes 3 + Geometric(mean 9), capped at 30), tasks shuffled
                  as a pipeline interleaves them; each category log-normal
                  (median log-uniform in 50..8000 MB, σ 0.05-0.3)
================  ======================================================

Feature-correlated kinds (``input_size`` in MB, known before a task runs; the
first two are one category with ``input_size`` log-normal, median 500 MB, σ 1,
clipped to 1..20000 MB):

================  ======================================================
input-linear      memory = 200 + 1.5·input_size, times log-normal noise
                  (σ 0.1)
input-loglinear   memory = 30·input_size^0.7, times log-normal noise
                  (σ 0.1): linear in log space
pipeline          a Nextflow-like mix: processes ``s000``, ``s001``... of
                  Geometric(mean 25) tasks (1 to 200), interleaved;
                  each process's inputs log-normal (median log-uniform in
                  10..20000 MB, σ 0.2-1, clipped to 1..20000 MB) and its
                  memory, times log-normal noise (σ 0.05-0.3), one of:
                  linear, a + k·input_size (40 % of processes); sub-linear,
                  a·(input_size / median)^b, b in 0.2..0.8 (30 %);
                  unrelated to the input, a (30 %); a log-uniform in
                  30..2000 MB, k in 0.2..5
================  ======================================================

Memory is clipped to at least 1 MB. Wall time is log-normal (median 60 s) and
grows mildly with memory, so larger tasks weigh more in time-weighted metrics;
cores are log-normal around 1; disk is 50 MB plus a quarter of the memory.
Every kind is deterministic given ``seed``. :data:`SUITE` is the fixed set of
(kind, n, seed) that ``benchmarks/bench_replay.py`` replays.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

#: What a generator returns: memory (MB) per task, plus optional ``category`` and
#: feature columns of the same length.
Columns = dict[str, np.ndarray]


def _mix(rng: np.random.Generator, n: int, modes: list[tuple[float, float]]) -> np.ndarray:
    which = rng.integers(0, len(modes), size=n)
    means = np.array([m for m, _ in modes])[which]
    sds = np.array([s for _, s in modes])[which]
    return rng.normal(means, sds)


def _bimodal(rng: np.random.Generator, n: int) -> np.ndarray:
    return _mix(rng, n, [(500.0, 50.0), (2000.0, 150.0)])


def _trimodal(rng: np.random.Generator, n: int) -> np.ndarray:
    return _mix(rng, n, [(300.0, 30.0), (1200.0, 100.0), (3000.0, 250.0)])


def _phases(rng: np.random.Generator, n: int) -> np.ndarray:
    half = n // 2
    return np.concatenate([_bimodal(rng, half), _trimodal(rng, n - half)])


def _shifting(rng: np.random.Generator, n: int) -> np.ndarray:
    parts = []
    bounds = [0, n // 3, 2 * n // 3, n]
    for (low, high), a, b in zip([(500.0, 2000.0), (900.0, 1500.0), (300.0, 2600.0)], bounds, bounds[1:]):
        parts.append(_mix(rng, b - a, [(low, 0.08 * low), (high, 0.08 * high)]))
    return np.concatenate(parts)


def _growth(rng: np.random.Generator, n: int) -> np.ndarray:
    mean = 800.0 + 1200.0 * np.arange(n) / max(1, n - 1)
    return rng.normal(mean, 0.05 * mean)


def _heavy_tail(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.minimum(100.0 + 300.0 * rng.pareto(1.3, n), 32768.0)


def _category_sizes(n: int, draw: Callable[[], int]) -> list[int]:
    """Task counts of categories, ``draw()`` each, until they hold ``n`` tasks;
    the last one cut short to make exactly ``n``."""
    sizes: list[int] = []
    total = 0
    while total < n:
        sizes.append(draw())
        total += sizes[-1]
    if sizes:
        sizes[-1] -= total - n
    return sizes


def _many_categories(rng: np.random.Generator, n: int) -> Columns:
    if n == 0:
        return {"memory": np.empty(0), "category": np.empty(0, dtype=object)}
    sizes = _category_sizes(n, lambda: int(min(30, 3 + rng.geometric(1 / 9) - 1)))
    k = len(sizes)
    medians = np.exp(rng.uniform(np.log(50.0), np.log(8000.0), k))
    sigmas = rng.uniform(0.05, 0.3, k)
    which = rng.permutation(np.repeat(np.arange(k), sizes))
    memory = medians[which] * np.exp(rng.normal(0.0, 1.0, n) * sigmas[which])
    names = np.array([f"p{j:03d}" for j in range(k)], dtype=object)
    return {"memory": memory, "category": names[which]}


def _pipeline(rng: np.random.Generator, n: int) -> Columns:
    sizes = _category_sizes(n, lambda: int(min(200, rng.geometric(1 / 25))))
    memory, inputs, names = np.empty(n), np.empty(n), np.empty(n, dtype=object)
    at = 0
    for j, count in enumerate(sizes):
        median = np.exp(rng.uniform(np.log(10.0), np.log(20000.0)))
        size = np.clip(median * rng.lognormal(0.0, rng.uniform(0.2, 1.0), count), 1.0, 20000.0)
        base = np.exp(rng.uniform(np.log(30.0), np.log(2000.0)))
        relation = rng.choice(3, p=[0.4, 0.3, 0.3])
        if relation == 0:
            mem = base + rng.uniform(0.2, 5.0) * size
        elif relation == 1:
            mem = base * (size / median) ** rng.uniform(0.2, 0.8)
        else:
            mem = np.full(count, base)
        memory[at:at + count] = mem * rng.lognormal(0.0, rng.uniform(0.05, 0.3), count)
        inputs[at:at + count] = size
        names[at:at + count] = f"s{j:03d}"
        at += count
    order = rng.permutation(n)
    return {"memory": memory[order], "category": names[order], "input_size": inputs[order]}


def _input_size(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.clip(rng.lognormal(np.log(500.0), 1.0, n), 1.0, 20000.0)


def _input_linear(rng: np.random.Generator, n: int) -> Columns:
    size = _input_size(rng, n)
    return {"memory": (200.0 + 1.5 * size) * rng.lognormal(0.0, 0.1, n), "input_size": size}


def _input_loglinear(rng: np.random.Generator, n: int) -> Columns:
    size = _input_size(rng, n)
    return {"memory": 30.0 * size ** 0.7 * rng.lognormal(0.0, 0.1, n), "input_size": size}


#: kind -> generator (rng, n) -> memory in MB, or a dict of columns with ``memory``
#: and optionally ``category`` and features (``input_size`` MB).
KINDS: dict[str, Callable[[np.random.Generator, int], np.ndarray | Columns]] = {
    "normal": lambda rng, n: rng.normal(1000.0, 200.0, n),
    "uniform": lambda rng, n: rng.uniform(100.0, 2000.0, n),
    "exponential": lambda rng, n: 50.0 + rng.exponential(500.0, n),
    "bimodal": _bimodal,
    "trimodal": _trimodal,
    "beta": lambda rng, n: 100.0 + 3900.0 * rng.beta(2.0, 5.0, n),
    "phases": _phases,
    "shifting": _shifting,
    "growth": _growth,
    "heavy-tail": _heavy_tail,
    "many-categories": _many_categories,
    "input-linear": _input_linear,
    "input-loglinear": _input_loglinear,
    "pipeline": _pipeline,
}

#: Kinds with an ``input_size`` feature column.
FEATURE_KINDS: tuple[str, ...] = ("input-linear", "input-loglinear", "pipeline")

#: The fixed development suite: (kind, tasks, seed) per member, replayed by
#: ``benchmarks/bench_replay.py`` (seed 0 for the stationary kinds, 1 for the others,
#: so they are not all drawn from the same stream).
SUITE: tuple[tuple[str, int, int], ...] = tuple(
    (kind, 3000, 0 if kind in ("normal", "uniform", "exponential", "bimodal", "trimodal", "beta") else 1)
    for kind in KINDS)


def synthetic(kind: str, n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` synthetic tasks whose memory follows ``kind`` (see the module docstring),
    deterministic given ``seed``. Raises ``ValueError`` for an unknown kind or n < 0."""
    try:
        generate = KINDS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown synthetic kind {kind!r}; known kinds: {', '.join(KINDS)}") from None
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"number of tasks n must be an integer >= 0, got {n!r}")
    n = int(n)
    rng = np.random.default_rng(seed)
    drawn = generate(rng, n)
    columns = dict(drawn) if isinstance(drawn, dict) else {"memory": drawn}
    memory = np.maximum(np.asarray(columns.pop("memory"), dtype=float), 1.0)
    category = columns.pop("category", kind)
    wall = rng.lognormal(np.log(60.0), 0.5, n) * (memory / 1000.0) ** 0.3
    cores = np.clip(rng.lognormal(0.0, 0.3, n), 0.1, None)
    return pd.DataFrame({
        "category": category,
        "memory": memory,
        "cores": cores,
        "disk": 50.0 + memory / 4.0,
        "wall_time": wall,
        "cpu_time": wall * cores,
        "status": "ok",
        **columns,
    })
