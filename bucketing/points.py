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


def check_n_buckets(n_buckets: object) -> int:
    """``n_buckets`` validated: an integer >= 1 (not a bool)."""
    if not isinstance(n_buckets, (int, np.integer)) or isinstance(n_buckets, bool) or n_buckets < 1:
        raise ValueError(f"n_buckets must be an integer >= 1, got {n_buckets!r}")
    return int(n_buckets)


def bin_points(values: np.ndarray, significance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge equal values: returns (ascending distinct values, summed significance)."""
    uniq, inverse = np.unique(values, return_inverse=True)
    return uniq, np.bincount(inverse, weights=significance, minlength=uniq.size)


class Points:
    """Growing binned history: ``add(value, sig)`` in O(1) amortised,
    ``arrays()`` gives (values, significance) ascending by value, ready for the
    algorithms.  ``len()`` is the number of points added (not bins).

    ``channels`` > 1 keeps that many summed weights per bin (e.g. significance
    and significance x wall time): ``add(value, w0, w1, ...)`` and ``arrays()``
    returns ``(values, w0, w1, ...)``.
    """

    __slots__ = ("_index", "_vals", "_weights", "_n", "_max", "_arrays", "_order", "channels")

    def __init__(self, channels: int = 1) -> None:
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be an integer >= 1, got {channels!r}")
        self.channels = channels
        self._index: dict[float, int] = {}
        self._vals: list[float] = []
        self._weights: list[list[float]] = [[] for _ in range(channels)]
        self._n = 0
        self._max = -math.inf
        self._arrays: tuple[np.ndarray, ...] | None = None
        self._order: np.ndarray | None = None  # argsort of the values, kept until a new value arrives

    def add(self, value: float, significance: float, *more: float) -> None:
        """Add one point: ``value`` with its weight in each channel."""
        if len(more) != self.channels - 1:
            raise ValueError(f"Points with {self.channels} channel(s) needs {self.channels} weight(s), "
                             f"got {1 + len(more)}")
        i = self._index.get(value)
        weights = self._weights
        if i is None:
            self._index[value] = len(self._vals)
            self._vals.append(value)
            weights[0].append(significance)
            for c, w in enumerate(more, 1):
                weights[c].append(w)
            self._order = None
        else:
            weights[0][i] += significance
            for c, w in enumerate(more, 1):
                weights[c][i] += w
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

    def arrays(self) -> tuple[np.ndarray, ...]:
        """(distinct values ascending, summed weight per value of each channel)."""
        if self._arrays is None:
            k = len(self._vals)
            if self._order is None:
                self._order = np.argsort(np.fromiter(self._vals, float, k), kind="stable")
            order = self._order
            self._arrays = (np.fromiter(self._vals, float, k)[order],) + tuple(
                np.fromiter(w, float, k)[order] for w in self._weights)
        return self._arrays
