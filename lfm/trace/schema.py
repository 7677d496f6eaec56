"""The trace schema: column names, units, statuses, and normalisation.

A trace is a table with one row per task attempt:

``category`` (str)
    the kind of task; predictors learn one model per category.
resource columns (float, NaN where not measured, never a negative sentinel)
    ``memory``, ``virtual_memory``, ``disk``, ``bytes_read``, ``bytes_written``
    in MB (2**20 bytes); ``cores`` (float); ``cpu_time``, ``wall_time`` in s;
    ``total_processes`` (count); ``start``, ``end`` in s since the epoch.
``status`` (str)
    ``ok`` (the attempt finished), ``exhausted`` (killed for exceeding its
    allocation; ``exceeded`` lists which resources) or ``error`` (it failed for
    another reason).
``alloc_<resource>`` (float, optional)
    what the attempt was allocated, same unit as the resource.
feature columns (optional, free-form)
    e.g. ``task_id``, ``attempt``, ``function``, ``name``, ``exceeded``, ``host``.

Every reader returns its frame through :func:`lfm.trace.frame.normalize`, so
columns always come in this order: ``COLUMNS``, then the ``alloc_*`` columns,
then the features. This module imports neither numpy nor pandas, so recording
rows from a monitored call's process stays light.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real
from typing import Any

from lfm.resources import UNITS

#: Resource columns, in their stable order; units in :data:`lfm.UNITS`.
RESOURCES: tuple[str, ...] = tuple(UNITS)

#: Columns every trace frame has, in this order.
COLUMNS: tuple[str, ...] = ("category", *RESOURCES, "status")

#: Allowed values of ``status``.
STATUSES: tuple[str, ...] = ("ok", "exhausted", "error")

#: Prefix of allocation columns (``alloc_memory`` ...).
ALLOC_PREFIX = "alloc_"


def _number(name: str, value: Any) -> float | None:
    """``value`` as a float >= 0, None when absent (None or NaN); ValueError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):  # numpy scalars are Real too
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def make_row(category: str, resources: Mapping[str, float], status: str, *,
             alloc: Mapping[str, float] | None = None, **features: Any) -> dict[str, Any]:
    """One trace row as a plain dict, ready for :meth:`Trace.append`.

    ``resources`` maps resource name -> measured value (units of :data:`RESOURCES`;
    a :class:`lfm.Resources` works); ``None``/NaN values are left out (not
    measured). Names beyond :data:`RESOURCES` are kept as extra numeric columns.
    ``alloc`` maps resource name -> allocated value and becomes ``alloc_<name>``.
    ``features`` are free-form JSON-serialisable columns (``task_id``,
    ``attempt``, ``exceeded``, ...); they must not reuse a schema column name.

    Raises ValueError for a status outside :data:`STATUSES`, an empty category,
    or a value that is not a finite number >= 0.
    """
    if not isinstance(category, str) or not category:
        raise ValueError(f"category must be a non-empty string, got {category!r}")
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {status!r}")
    row: dict[str, Any] = {"category": category, "status": status}
    for name, value in (resources or {}).items():
        if not isinstance(name, str) or not name or name in ("category", "status") \
                or name.startswith(ALLOC_PREFIX):
            raise ValueError(f"bad resource name {name!r}; known resources: {', '.join(RESOURCES)}")
        number = _number(name, value)
        if number is not None:
            row[name] = number
    for name, value in (alloc or {}).items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"bad allocation name {name!r}; known resources: {', '.join(RESOURCES)}")
        number = _number(f"alloc[{name!r}]", value)
        if number is not None:
            row[ALLOC_PREFIX + name] = number
    for name, value in features.items():
        if name in row or name in COLUMNS or name.startswith(ALLOC_PREFIX):
            raise ValueError(f"feature {name!r} clashes with a schema column "
                             f"({', '.join(COLUMNS)}, alloc_*); rename it")
        row[name] = value
    return row
