"""lfm — the Lightweight Function Monitor.

Measure what each Python call really uses (peak memory in MB, cores as a float,
wall and CPU time in seconds, disk and I/O in MB), record it in a trace, and use
that history to label future tasks with the right resources.
"""
import sys as _sys

#: modules this interpreter had loaded before lfm was first imported (its
#: start-up: site, .pth hooks, or the caller's own): never a call's ``imports``
_STARTUP_MODULES = frozenset(_sys.modules)

from lfm.resources import (  # noqa: E402
    MB,
    UNITS,
    CallAborted,
    CallExited,
    CallKilled,
    MonitorError,
    RemoteTraceback,
    ResourceExhaustion,
    Resources,
    SerializationError,
)
from lfm.lazy import lazy_exports  # noqa: E402

__version__ = "0.1.0"

# ``monitored`` on first use: ``import lfm.executors.runner`` (every Work Queue
# task) then imports only the monitor's fork path
__getattr__, __dir__ = lazy_exports(__name__, {"monitored": "monitor.decorator"}, globals())

__all__ = [
    "MB", "UNITS", "CallAborted", "CallExited", "CallKilled", "MonitorError", "RemoteTraceback",
    "ResourceExhaustion", "Resources", "SerializationError", "__version__", "monitored",
]
