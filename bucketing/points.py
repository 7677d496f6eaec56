"""History of one resource as (value, significance) points, compressed into value bins.

Every bucketing algorithm here only needs, for each distinct value, the summed
significance of the points with that value: points with equal values always
fall into the same bucket, so merging them is exact.  Usages recorded in whole
MB (as the replays do) therefore cost one bin per distinct MB value, and a
history of 30,000 tasks typically holds a few hundred bins.

Significance encodes recency: by default the i-th point added (1-based) has
significance i, so later tasks weigh more (the published default).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np


class Bucket(NamedTuple):
    """One bucket: tasks up to ``upper`` (same unit as the values, e.g. MB)
    fall into it; ``probability`` is its share of the (significance-weighted)
    history."""

    upper: float
    probability: float


def as_points(values: Iterable[float], significance: Iterable[float] | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``values`` (>= 0, finite) and ``significance`` (> 0, finite;
    default: arrival index 1..n) and return them as float arrays.

    Raises ``ValueError`` naming the first bad entry.
    """
    vals = np.asarray(values if not isinstance(values, (list, tuple)) else list(values), dtype=float)
    if vals.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {vals.shape}")
    if vals.size == 0:
        raise ValueError("values is empty: bucketing needs at least one point")
    bad = ~np.isfinite(vals) | (vals < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"values[{i}] = {vals[i]!r}: values must be finite numbers >= 0")
    if significance is None:
        sig = np.arange(1, vals.size + 1, dtype=float)
    else:
        sig = np.asarray(list(significance) if isinstance(significance, (list, tuple)) else significance,
                         dtype=float)
        if sig.shape != vals.shape:
            raise ValueError(f"significance has shape {sig.shape}, expected {vals.shape} (one per value)")
        bad = ~np.isfinite(sig) | (sig <= 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"significance[{i}] = {sig[i]!r}: significance must be finite numbers > 0")
    return vals, sig


def bin_points(values: np.ndarray, significance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge equal values: returns (ascending distinct values, summed significance)."""
    uniq, inverse = np.unique(values, return_inverse=True)
    return uniq, np.bincount(inverse, weights=significance, minlength=uniq.size)


class Points:
    """Growing binned history: ``add(value, sig)`` in O(bins) worst case,
    ``arrays()`` gives (values, significance) ascending by value, ready for the
    algorithms.  ``len()`` is the number of points added (not bins)."""

    __slots__ = ("_index", "_vals", "_sigs", "_n", "_max", "_arrays")

    def __init__(self) -> None:
        self._index: dict[float, int] = {}
        self._vals: list[float] = []
        self._sigs: list[float] = []
        self._n = 0
        self._max = -math.inf
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, value: float, significance: float) -> None:
        i = self._index.get(value)
        if i is None:
            self._index[value] = len(self._vals)
            self._vals.append(value)
            self._sigs.append(significance)
        else:
            self._sigs[i] += significance
        self._n += 1
        if value > self._max:
            self._max = value
        self._arrays = None

    def __len__(self) -> int:
        return self._n

    @property
    def max(self) -> float:
        """Largest value added (``-inf`` when empty)."""
        return self._max

    @property
    def bins(self) -> int:
        return len(self._vals)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(distinct values ascending, summed significance per value)."""
        if self._arrays is None:
            vals = np.fromiter(self._vals, float, len(self._vals))
            sigs = np.fromiter(self._sigs, float, len(self._sigs))
            order = np.argsort(vals, kind="stable")
            self._arrays = (vals[order], sigs[order])
        return self._arrays
