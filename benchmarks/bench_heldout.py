"""``auto`` against the best reference on held-out workloads: families of memory
distributions that are not in ``predictors.synthetic`` and were never used to tune it.

The synthetic suite (``bench_replay``) is the development set; a predictor tuned on it
can still lose on what it has not seen. Here every workload is drawn from a seed:
1 to 10 interleaved categories of 100 to 2,500 tasks, each following one of
:data:`FAMILIES` (memory in MB), with log-normal wall times (s) whose correlation with
the task's memory is drawn in -0.2..0.8 (long tasks are often the big ones, not always).
The verdicts are :func:`benchmarks.bench_replay.judge_auto`'s: the reference
policies with their defaults, probabilistic ones median over seeds 1-3, each replayed
with the retry cost charged, and ``auto`` told the retry cost.

A margin below zero on one workload is not a failure of this benchmark: it reports the
distribution (mean margin, how many below, the worst), which is what an outside check on
unseen traces would see.

    python -m benchmarks heldout [--quick] [--seeds=A-B] [--auto=NAME=VALUE ...]

``--quick``: 10 workloads instead of 30; ``--seeds=A-B``: workloads A to B instead
(e.g. ``--seeds=1040-1139``, the 100 on which ``wall_halflife`` was chosen; seeds from
1140 on were never looked at); ``--auto=NAME=VALUE``: a numeric parameter of ``auto``
other than the ones the verdicts set themselves (seed, retry_cost), to compare a
setting side by side with the default (e.g. ``--auto=wall_halflife=0``).
"""
from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

import predictors
from benchmarks.bench_replay import RETRY_COST, judge_auto

WORKLOADS = 30
SEED_BASE = 50_000  # workload seeds start here, apart from every other seed in the project


def _lognormal(rng: np.random.Generator, n: int) -> np.ndarray:
    """Median log-uniform in 50..8,000 MB, σ 0.05-1."""
    return np.exp(rng.uniform(np.log(50), np.log(8000))) * rng.lognormal(0, rng.uniform(0.05, 1.0), n)


def _gamma(rng: np.random.Generator, n: int) -> np.ndarray:
    """20 MB + Gamma(shape 0.5-6), mean 50-1,500 MB."""
    shape = rng.uniform(0.5, 6)
    return 20 + rng.gamma(shape, rng.uniform(50, 1500) / shape, n)


def _modes(rng: np.random.Generator, n: int) -> np.ndarray:
    """2-5 narrow log-normal modes (50..8,000 MB) with Dirichlet weights."""
    k = int(rng.integers(2, 6))
    centres = np.exp(rng.uniform(np.log(50), np.log(8000), k))
    which = rng.choice(k, n, p=rng.dirichlet(np.ones(k)))
    return centres[which] * rng.lognormal(0, rng.uniform(0.02, 0.2), n)


def _drift(rng: np.random.Generator, n: int) -> np.ndarray:
    """A log-normal whose median takes a random walk (steps of 0.2-3 % per task)."""
    walk = np.cumsum(rng.normal(0, rng.uniform(0.002, 0.03), n))
    return np.exp(np.log(rng.uniform(200, 3000)) + walk) * rng.lognormal(0, rng.uniform(0.03, 0.3), n)


def _blocks(rng: np.random.Generator, n: int) -> np.ndarray:
    """Two levels (100..6,000 MB) alternating in blocks of 20-400 tasks."""
    low, high = np.exp(rng.uniform(np.log(100), np.log(6000), 2))
    level = (np.arange(n) // int(rng.integers(20, 400))) % 2
    return np.where(level == 0, low, high) * rng.lognormal(0, rng.uniform(0.02, 0.15), n)


def _discrete(rng: np.random.Generator, n: int) -> np.ndarray:
    """1-5 sizes, multiples of 256 MB, each used up to 200 MB below."""
    sizes = rng.choice(np.arange(1, 33) * 256.0, int(rng.integers(1, 6)), replace=False)
    return sizes[rng.integers(0, len(sizes), n)] - rng.uniform(0, 200, n)


def _outliers(rng: np.random.Generator, n: int) -> np.ndarray:
    """A log-normal with 0.2-3 % of its tasks 3-20 times larger."""
    base = _lognormal(rng, n)
    return np.where(rng.random(n) < rng.uniform(0.002, 0.03), base * rng.uniform(3, 20, n), base)


#: name -> generator(rng, n) of n memory usages in MB
FAMILIES = {"lognormal": _lognormal, "gamma": _gamma, "modes": _modes, "drift": _drift,
            "blocks": _blocks, "discrete": _discrete, "outliers": _outliers}


def workload(seed: int) -> pd.DataFrame:
    """One held-out workload in the trace schema (category, memory MB, cores, wall_time s,
    status), drawn from ``seed``; a category is named ``c<i>:<family>``."""
    rng = np.random.default_rng(SEED_BASE + seed)
    ncat = int(rng.choice([1, 1, 1, 2, 3, 5, 10]))
    names = list(FAMILIES)
    parts = []
    for c in range(ncat):
        n = int(rng.integers(100, 2500 // ncat + 101))
        family = names[int(rng.integers(len(names)))]
        memory = np.clip(FAMILIES[family](rng, n), 5, 60_000)
        logm = np.log(memory)
        rho = rng.uniform(-0.2, 0.8)
        z = rho * (logm - logm.mean()) / (logm.std() + 1e-9) + np.sqrt(1 - rho * rho) * rng.normal(size=n)
        # spread 0.1-1 in log space: a day-long task among minute-long ones, not a year-long one
        wall = np.exp(np.log(rng.uniform(5, 3000)) + rng.uniform(0.1, 1.0) * np.clip(z, -4, 4))
        parts.append(pd.DataFrame({"category": f"c{c}:{family}", "memory": memory, "wall_time": wall,
                                   "order": rng.random(n) if ncat > 1 else np.arange(n, dtype=float)}))
    df = pd.concat(parts).sort_values("order", kind="stable").drop(columns="order").reset_index(drop=True)
    return df.assign(cores=1.0, status="ok")


def verdicts(seeds: list[int], retry_cost: float, auto_params: dict | None = None) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        df = workload(seed)
        families = ",".join(sorted({c.split(":")[1] for c in df["category"].unique()}))
        rows.append({"seed": seed, "tasks": len(df), "categories": df["category"].nunique(),
                     "families": families, **judge_auto(df, retry_cost, auto_params)})
    return pd.DataFrame(rows)


def _options(argv: list[str]) -> tuple[list[int], dict[str, float]]:
    """The workload seeds and auto's parameters that ``argv`` asks for (module docstring)."""
    seeds = list(range(10 if "--quick" in argv else WORKLOADS))
    params: dict[str, float] = {}
    # judge_auto sets seed, max_resources and retry_cost itself; resources and candidates are not numbers
    settable = sorted(set(predictors.create("auto").get_params())
                      - {"seed", "max_resources", "retry_cost", "resources", "candidates"})
    for arg in argv:
        flag, _, value = arg.partition("=")
        if flag == "--seeds":
            first, _, last = value.partition("-")
            if not (first.isdigit() and last.isdigit() and int(first) <= int(last)):
                raise SystemExit(f"--seeds=A-B wants two whole numbers A <= B, got {value!r}")
            seeds = list(range(int(first), int(last) + 1))
        elif flag == "--auto":
            name, _, number = value.partition("=")
            if name not in settable:
                raise SystemExit(f"--auto: {name!r} is not a parameter this benchmark can set; "
                                 f"it can set: {', '.join(settable)}")
            try:
                params[name] = float(number)
            except ValueError:
                raise SystemExit(f"--auto=NAME=NUMBER wants a number for {name}, got {number!r}") from None
    try:   # auto validates its parameters at first use: do that before an hour of replays
        predictors.create("auto", **params).predict("check")
    except ValueError as exc:
        raise SystemExit(f"--auto: {exc}") from None
    return seeds, params


def main(argv: list[str]) -> None:
    seeds, params = _options(argv)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 60)
    for rc in (0.0, RETRY_COST):
        started = time.perf_counter()
        table = verdicts(seeds, rc, params)
        print(f"\nauto{''.join(f' {k}={v:g}' for k, v in params.items())} on {len(seeds)} held-out workloads "
              f"(seeds {seeds[0]}-{seeds[-1]}; memory, per category, retry_cost {rc:g} s; "
              f"{time.perf_counter() - started:.0f} s)")
        print(table.to_string(index=False))
        d = table["diff"]
        print(f"held-out, retry_cost {rc:g} s: auto >= best reference on {int((table['verdict'] == 'ok').sum())} "
              f"of {len(table)}; mean margin {d.mean():+.4f}; median {d.median():+.4f}; worst {d.min():+.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
