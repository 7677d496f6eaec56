"""Validating limits and deciding when a call has exceeded them.

A limit maps a resource name to a maximum, in the units of :data:`lfm.UNITS`:
``memory``, ``virtual_memory``, ``disk`` (MB), ``wall_time`` (s), ``cores``.

How each is enforced while the call runs (checked every :data:`SAMPLE_INTERVAL`):

* ``memory`` — the sum of the kernel high-water marks (``VmHWM``) of the
  processes of the tree alive together, so a spike between two samples is seen
  at the next one; after the call the exact peak is checked again.
* ``virtual_memory`` — the sum of the tree's virtual sizes.
* ``disk`` — the space occupied in the call's own scratch area (its fresh
  ``TMPDIR``, or the ``workdir`` it was given: see :mod:`lfm.monitor.disk`),
  walked at a rate that adapts to the walk's cost; after the call the last
  walk is checked again.
* ``wall_time`` — seconds since the call started (timed to the deadline, not
  to the sampling grid).
* ``cores`` — the tree's average cores over the last :data:`CORES_WINDOW`
  seconds exceeding the limit by more than :data:`CORES_TOLERANCE` (CPU time
  is counted in clock ticks, so an exact comparison would kill a single busy
  process limited to 1 core).
"""
from __future__ import annotations

from collections.abc import Mapping

from lfm.checks import positive
from lfm.resources import LIMITABLE, UNITS, ResourceExhaustion

#: Seconds between two samples of the call's process tree (limits, snapshots).
SAMPLE_INTERVAL = 0.05
#: Seconds over which the ``cores`` limit averages the tree's CPU use.
CORES_WINDOW = 1.0
#: Cores above the limit tolerated before a ``cores`` limit kills the call.
CORES_TOLERANCE = 0.1

#: Limits re-checked against the exact measurement after the call returned.
FINAL_CHECKED = ("memory", "virtual_memory", "disk", "wall_time")


def validate_limits(limits: Mapping[str, float] | None) -> dict[str, float]:
    """Return ``limits`` as a plain dict of floats; ValueError for an unknown
    resource name (listing the known ones) or a value that is not a positive,
    finite number."""
    if limits is None:
        return {}
    if not isinstance(limits, Mapping):
        raise ValueError(f"limits must be a mapping resource -> maximum, got {type(limits).__name__}")
    clean: dict[str, float] = {}
    for name, value in limits.items():
        if name not in LIMITABLE:
            raise ValueError(f"unknown limit {name!r}; known limits: {', '.join(LIMITABLE)}")
        if value is None:
            continue
        clean[name] = positive(value, f"limit {name}", unit=UNITS.get(name, ""))
    return clean


#: What an inline call (``isolate=False``) cannot enforce, and why.
NOT_INLINE = {
    "cores": "the call runs in the caller's own process, whose threads cannot be told from "
             "the call's, and a cores limit can only be enforced by killing the call while it runs",
    "disk": "an inline call has no scratch directory of its own (pass workdir= to measure, "
            "and limit, a directory)",
}


def check_enforceable(limits: Mapping[str, float], *, isolate: bool | str,
                      workdir: object = None) -> None:
    """ValueError for a limit that the mode ``isolate`` cannot enforce (never
    silently ignored): inline, ``cores`` always and ``disk`` without a
    ``workdir``. ``limits`` is already validated."""
    if isolate:
        return
    for name, why in NOT_INLINE.items():
        if name in limits and not (name == "disk" and workdir is not None):
            raise ValueError(f"a {name} limit cannot be enforced inline (isolate=False): {why}; "
                             f"run the call isolated (isolate=True) or drop the {name} limit")


def exceeded(measured: Mapping[str, float], limits: Mapping[str, float],
             names: tuple[str, ...] = FINAL_CHECKED) -> dict[str, float]:
    """The limits among ``names`` that ``measured`` exceeds: resource -> limit."""
    return {name: limits[name] for name in names
            if name in limits and name in measured and measured[name] > limits[name]}


def raise_if_exceeded(measured: Mapping[str, float], limits: Mapping[str, float], label: str,
                      how: str) -> None:
    """ResourceExhaustion when the call's final measurement exceeds one of
    :data:`FINAL_CHECKED` limits; ``how`` says how that was found."""
    late = exceeded(measured, limits)
    if late:
        raise ResourceExhaustion(f"{label} exceeded its limits ({describe(late, measured)}); {how}",
                                 resources=measured, exceeded=late, limits=limits)


def describe(exceeded_limits: Mapping[str, float], measured: Mapping[str, float]) -> str:
    """Human-readable 'memory 412 MB > 100 MB, ...'."""
    parts = []
    for name, limit in exceeded_limits.items():
        unit = UNITS.get(name, "")
        value = measured.get(name)
        shown = f"{value:.4g}" if value is not None else "?"
        parts.append(f"{name} {shown} {unit} > {limit:.4g} {unit}".replace("  ", " "))
    return ", ".join(parts)
