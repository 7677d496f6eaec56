"""``parsl_resource_specification`` as lfm's Parsl executors read it: which
keys each accepts, the task's category, the declared resources (cores a float,
memory and disk in MB) and, for the Work Queue executor, Work Queue's own task
options. A bad specification is an ``InvalidResourceSpecification`` naming its
keys, as Parsl's own executors raise."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from parsl.executors.errors import InvalidResourceSpecification

from lfm.executors.calls import EXTRA_OPTIONS, check_category, extra_value

#: The resources a specification may declare (cores, memory MB, disk MB).
LABELLED = ("cores", "memory", "disk")

#: Keys ``lfm.parsl.AutolabelExecutor`` accepts: resources in lfm's units
#: (cores a float, memory and disk in MB) and the task's category.
ACCEPTED_SPECIFICATION = (*LABELLED, "category")

#: Keys of ``parsl_resource_specification`` (memory and disk in MB,
#: running_time_min in s), as Parsl's Work Queue executor takes them, plus ``category``.
WORK_QUEUE_SPECIFICATION = (*LABELLED, "gpus", "priority", "running_time_min", "category")


def autolabel_specification(spec: Any, label: str) -> tuple[str | None, dict[str, Any]]:
    """(category or None, declared resources) of ``lfm.parsl.AutolabelExecutor``
    ``label``'s specification: keys checked here, values by the lfm executor."""
    spec = _mapping(spec)
    unknown = set(spec) - set(ACCEPTED_SPECIFICATION)
    if unknown:
        raise InvalidResourceSpecification(
            unknown, f"executor {label!r} accepts only these keys: "
            f"{', '.join(ACCEPTED_SPECIFICATION)} (memory and disk in MB)")
    return _category(spec), {k: v for k, v in spec.items() if k != "category"}


def work_queue_specification(spec: Any, autolabel: bool) -> tuple[str | None, dict[str, float], dict[str, Any]]:
    """(category or None, declared cores/memory/disk, Work Queue extras) of a
    ``lfm.parsl.WorkQueueExecutor`` specification, with Parsl's rules: only
    :data:`WORK_QUEUE_SPECIFICATION` keys, and with ``autolabel=False`` all of
    cores, memory and disk or none of them."""
    spec = _mapping(spec)
    keys = set(spec)
    if not keys <= set(WORK_QUEUE_SPECIFICATION):
        raise InvalidResourceSpecification(
            keys, "Task resource specification only accepts these types of resources: "
            + ", ".join(WORK_QUEUE_SPECIFICATION)
            + f" (unknown: {', '.join(sorted(map(str, keys - set(WORK_QUEUE_SPECIFICATION))))})")
    given = keys & set(LABELLED)
    if not autolabel and given and given != set(LABELLED):
        raise InvalidResourceSpecification(
            keys, "Task resource specification requires three resources to be specified "
            "simultaneously: cores, memory, and disk. Try setting autolabel=True if you are "
            "unsure of the resource usage")
    category = _category(spec)
    extra = {key: _extra_value(key, spec[key]) for key in EXTRA_OPTIONS if spec.get(key) is not None}
    return category, {k: spec[k] for k in LABELLED if k in spec}, extra


def _mapping(spec: Any) -> Mapping[str, Any]:
    if not spec:
        return {}
    if not isinstance(spec, Mapping):
        raise InvalidResourceSpecification(
            set(), f"parsl_resource_specification must be a dict, got {type(spec).__name__}")
    return spec


def _category(spec: Mapping[str, Any]) -> str | None:
    try:
        return check_category(spec.get("category"))
    except ValueError as exc:
        raise InvalidResourceSpecification({"category"}, str(exc)) from None


def _extra_value(key: str, value: Any) -> int | float:
    """A Work Queue task option of the specification (:func:`lfm.executors.calls.extra_value`),
    refused as Parsl refuses a specification."""
    try:
        return extra_value(key, value)
    except ValueError as exc:
        raise InvalidResourceSpecification({key}, str(exc)) from None


__all__ = ["ACCEPTED_SPECIFICATION", "LABELLED", "WORK_QUEUE_SPECIFICATION", "autolabel_specification",
           "work_queue_specification"]
