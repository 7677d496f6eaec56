"""The demo's workload: two kinds of real Python calls, as in a ColmenaXTB-style
molecular-design campaign.

* :func:`inference` — light and short: score a batch of candidate molecules
  with a small fixed neural network (numpy, ~35 MB, ~0.3 s).
* :func:`simulate` — memory-hungry: relax one molecule on a grid whose size
  depends on the molecule, so its peak memory varies from call to call
  (:func:`simulation_memory`: 100-650 MB, three size classes, scaled down from
  the 150-900 MB of the real campaign to fit a 2-core laptop), 0.4-1.3 s.

Everything is deterministic given the seeds: :func:`workflow` lists the calls
of a run, :func:`simulation_memory` says how much memory a call will need.
The functions are module-level so that worker processes import them by name.
The numpy work stays out of multi-threaded BLAS, and the calls wait between
steps as real codes wait on files and helpers, so a call uses less than a core.
"""
from __future__ import annotations

import time

import numpy as np

MB = 2 ** 20

#: (share of molecules, low MB, high MB) of the three molecule size classes.
SIZE_CLASSES = ((0.5, 100.0, 180.0), (0.3, 280.0, 380.0), (0.2, 520.0, 650.0))

#: Category names of the two task types (the functions' names).
CATEGORIES = ("inference", "simulate")


def simulation_memory(molecule: int) -> float:
    """Peak memory (MB) that ``simulate(molecule)`` allocates on top of the
    interpreter: 100-650 MB, drawn from :data:`SIZE_CLASSES` by the molecule id."""
    rng = np.random.default_rng([7, int(molecule)])
    shares = np.array([c[0] for c in SIZE_CLASSES])
    k = int(rng.choice(len(SIZE_CLASSES), p=shares / shares.sum()))
    _, low, high = SIZE_CLASSES[k]
    return float(rng.uniform(low, high))


def simulate(molecule: int, seconds_per_gb: float = 1.5) -> float:
    """Relax molecule ``molecule`` on a grid of :func:`simulation_memory` MB:
    the grid and its next state (float64 arrays of 1/2.25 of that size each,
    every page touched) plus a temporary of a quarter of one while a block is
    swept. Each step smooths one quarter of the grid, then waits, as a real
    code waits on its files and helpers, so a call uses well under one core.
    It holds the memory for about ``0.3 + seconds_per_gb * size/1024`` s, long
    enough for a memory limit to catch it. Returns the final energy."""
    size_mb = simulation_memory(molecule)
    n = int(size_mb * MB / 8 / 2.25)
    rng = np.random.default_rng(int(molecule))
    grid = np.full(n, 1.0)
    grid[::1024] = rng.standard_normal(len(grid[::1024]))
    work = grid.copy()
    block = max(1, n // 4)
    deadline = time.monotonic() + 0.3 + seconds_per_gb * size_mb / 1024.0
    step = 0
    while True:
        lo = (step % 4) * block
        g, w = grid[lo:lo + block], work[lo:lo + block]
        np.multiply(g, 0.5, out=w)
        w[1:] += 0.25 * g[:-1]
        w[:-1] += 0.25 * g[1:]
        step += 1
        if step % 4 == 0:
            grid, work = work, grid
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    return float(np.dot(grid[::4096], grid[::4096]))


def inference(batch: int, molecules: int = 1000) -> np.ndarray:
    """Score ``molecules`` candidates of batch ``batch`` with a small fixed
    two-layer network, then wait briefly (as for the next batch of inputs);
    returns their scores (float64 array). ~35 MB, ~0.3 s."""
    rng = np.random.default_rng([11, int(batch)])
    features = rng.standard_normal((molecules, 256))
    weights = np.random.default_rng(0).standard_normal((256, 64)) / 16.0
    scores = np.zeros(molecules)
    for _ in range(4):  # einsum without optimize stays out of BLAS (one thread)
        hidden = np.tanh(np.einsum("ij,jk->ik", features, weights, optimize=False))
        scores += hidden.sum(axis=1)
    time.sleep(0.2)
    return scores


def workflow(tasks: int, seed: int = 0) -> list[tuple[str, int]]:
    """The calls of a run: ``tasks`` pairs ``(category, argument)``, in
    submission order. About two thirds are inference batches and one third
    simulations, interleaved as a steering loop submits them (a few inference
    batches, then the simulations they chose). Deterministic given ``seed``."""
    if tasks < 0:
        raise ValueError(f"tasks must be >= 0, got {tasks}")
    rng = np.random.default_rng(seed)
    calls: list[tuple[str, int]] = []
    batch = molecule = 0
    while len(calls) < tasks:
        for _ in range(int(rng.integers(1, 4))):
            calls.append(("inference", batch))
            batch += 1
        for _ in range(int(rng.integers(1, 3))):
            calls.append(("simulate", int(rng.integers(0, 1_000_000)) + molecule))
            molecule += 1
    return calls[:tasks]


#: category -> the function that runs it
FUNCTIONS = {"inference": inference, "simulate": simulate}
