"""Measure what a Python call (or a command line) really uses.

``@monitored`` / :func:`run_call` run a call in its own process (forked from a
small fork server, so the caller's memory is not charged to it and a limit can
kill it) or inline; :func:`run_command` does the same for a command line.
Linux only: it reads ``/proc`` and the kernel's memory high-water marks.

Modules: :mod:`~lfm.monitor.procfs` (reading /proc), :mod:`~lfm.monitor.tree`
(sampling a process tree), :mod:`~lfm.monitor.disk` (a scratch area's
occupancy), :mod:`~lfm.monitor.limits`, :mod:`~lfm.monitor.wire` (messages
between processes); the process layer: :mod:`~lfm.monitor.spawner` (the
protocol) with :mod:`~lfm.monitor.forkserver` (the caller's side of
:mod:`~lfm.monitor.zygote`, the fork server) and
:mod:`~lfm.monitor.directfork`, :mod:`~lfm.monitor.supervise`,
:mod:`~lfm.monitor.outcome`, :mod:`~lfm.monitor.reaping` (kills and the
orphan rule), :mod:`~lfm.monitor.worker` (inside a call's process),
:mod:`~lfm.monitor.isolated` (putting them together); and
:mod:`~lfm.monitor.inline`, :mod:`~lfm.monitor.command`,
:mod:`~lfm.monitor.decorator`.
"""
from __future__ import annotations

from lfm.lazy import lazy_exports
from lfm.monitor.limits import SAMPLE_INTERVAL, validate_limits

# imported on first use, so that a process needing one engine (the Work Queue
# runner forks its call) does not import the others
_HOMES = {"monitored": "decorator", "run_call": "decorator", "run_command": "command"}

__all__ = ["monitored", "run_call", "run_command", "SAMPLE_INTERVAL", "validate_limits"]

__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
