"""lfm — the Lightweight Function Monitor.

Measure what each Python call really uses (peak memory in MB, cores as a float,
wall and CPU time in seconds, disk and I/O in MB), record it in a trace, and use
that history to label future tasks with the right resources.
"""
from lfm.resources import (
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
from lfm.lazy import lazy_exports

__version__ = "0.1.0"

# ``monitored`` on first use: ``import lfm.executors.runner`` (every Work Queue
# task) then imports only the monitor's fork path
__getattr__, __dir__ = lazy_exports(__name__, {"monitored": "monitor.decorator"}, globals())

__all__ = [
    "MB", "UNITS", "CallAborted", "CallExited", "CallKilled", "MonitorError", "RemoteTraceback",
    "ResourceExhaustion", "Resources", "SerializationError", "__version__", "monitored",
]
