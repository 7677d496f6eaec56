"""Run every benchmark module (``benchmarks/bench_*.py``) and print its tables.

``python -m benchmarks`` runs all; ``python -m benchmarks monitor replay`` runs the
named ones (``bench_monitor.py``, ``bench_replay.py``). Each module provides
``main(argv: list[str]) -> None`` and prints its own table(s).
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import benchmarks


def discover() -> list[str]:
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules(benchmarks.__path__)
                  if m.name.startswith("bench_"))


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-")] or discover()
    unknown = sorted(set(names) - set(discover()))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {discover()}", file=sys.stderr)
        return 2
    for name in names:
        print(f"\n=== benchmark: {name} ===", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"benchmarks.bench_{name}").main([a for a in argv if a.startswith("-")])
        print(f"(benchmark {name} took {time.perf_counter() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
