"""What the executor hands a backend (one :class:`Attempt` at a time) and what a
backend hands back (one :class:`Outcome` per attempt).

The executor owns labelling, retries, stats and the trace; a backend only runs
an attempt under its label and reports how it ended. A backend implements
:class:`Backend`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

from lfm.resources import Resources


@dataclass
class Attempt:
    """One try of one call.

    ``label``: resource -> allocation (cores float, memory/disk MB, wall_time s);
    the backend packs by it and enforces it as limits (cores only for packing).
    """

    task_id: int
    number: int  # 1 for the first attempt of a task
    category: str
    fn: Callable[..., Any]
    args: tuple
    kwargs: dict
    label: dict[str, float]
    #: set by the backend when the attempt starts running (epoch s)
    started: float | None = None
    #: backend's private bookkeeping (e.g. the Work Queue task object)
    handle: Any = None
    #: the backend calls it right before the attempt runs; False means the call
    #: was cancelled meanwhile: drop the attempt without calling ``done``
    on_start: Callable[[], bool] | None = None
    #: what is known before the call runs: name -> float (``input_size`` in MB)
    features: dict[str, float] = field(default_factory=dict)
    #: files staged to the worker before the call: (local path, name in the
    #: task's sandbox, cache on the worker); backends without staging ignore them
    inputs: list[tuple[str, str, bool]] = field(default_factory=list)
    #: files staged back after the call: (local path, name in the sandbox, cache)
    outputs: list[tuple[str, str, bool]] = field(default_factory=list)
    #: backend-specific task options, e.g. Work Queue's ``gpus``, ``priority``,
    #: ``running_time_min`` (s); a backend ignores the keys it does not know
    extra: dict[str, Any] = field(default_factory=dict)

    def starting(self) -> bool:
        """Mark the attempt started (``started`` = now); False if it must not run."""
        import time
        self.started = time.time()
        return self.on_start() if self.on_start is not None else True


@dataclass
class Outcome:
    """How an attempt ended.

    ``status``: ``"ok"`` (``value`` is the result), ``"exhausted"`` (``error`` a
    :class:`lfm.ResourceExhaustion`, ``exceeded`` the resources over their
    label), ``"error"`` (``error`` the call's exception, with its remote
    traceback as ``__cause__``, or an infrastructure error). ``resources``: what
    was measured (possibly partial or empty). ``host``: where it ran.
    ``granted``: what the backend really allocated to the attempt, which stats
    and traces charge (it may exceed the label: Work Queue grants whole cores).
    """

    status: str
    value: Any = None
    error: BaseException | None = None
    resources: Resources = field(default_factory=Resources)
    exceeded: dict[str, float] = field(default_factory=dict)
    host: str = ""
    #: what the backend allocated to the attempt: resource -> cores (float),
    #: memory MB, disk MB. Work Queue: what the worker says it granted (CORES,
    #: MEMORY, DISK in the task's environment), else what lfm asked of Work
    #: Queue (whole cores); local: what the attempt occupied while packed.
    #: A resource missing here is charged at its label.
    granted: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """Runs attempts. Methods are called from the executor's threads; ``done``
    may be called from any backend thread."""

    #: short name for stats and traces, e.g. "local", "workqueue"
    name: str

    def start(self, done: Callable[[Attempt, Outcome], None]) -> None:
        """Begin accepting attempts; call ``done(attempt, outcome)`` exactly once
        per attempt that was submitted and not cancelled."""

    def max_resources(self) -> dict[str, float]:
        """Largest allocation any worker can give, per resource (cores, memory
        MB, disk MB); labels are capped to it. Empty when unknown."""

    def submit(self, attempt: Attempt) -> None:
        """Queue an attempt (non-blocking)."""

    def cancel(self, attempt: Attempt) -> bool:
        """Drop a queued attempt that has not started; True if it was dropped
        (then ``done`` is not called for it)."""

    def shutdown(self, wait: bool = True) -> None:
        """Stop: with ``wait`` let running attempts finish first, otherwise kill
        them. Releases workers, processes and files the backend started."""


def allocation(backend: object, label: Mapping[str, float]) -> dict[str, float]:
    """What ``backend`` really gives an attempt labelled ``label`` (cores,
    memory MB, disk MB): its ``allocation(label)`` method where it has one (Work
    Queue grants whole cores and whole MB), else the label itself. The attempt
    runs within that allocation, so it is also what it is enforced at."""
    grant = getattr(backend, "allocation", None)
    return {**label, **grant(label)} if grant is not None else dict(label)


def limits_from_label(label: Mapping[str, float]) -> dict[str, float]:
    """The limits an attempt runs with: its label without ``cores``.

    Cores are a packing label, not a kill limit (as in Work Queue): a call that
    briefly uses more CPU than labelled slows its neighbours but is not wrong,
    and a cpu_time/wall_time ratio is only meaningful at the end of the call.
    A zero allocation (e.g. 0 MB disk learnt from calls that wrote nothing) is
    no limit: it cannot be enforced meaningfully.
    """
    return {k: float(v) for k, v in label.items() if k != "cores" and float(v) > 0}
