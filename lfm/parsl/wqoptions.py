"""Parameters of Parsl's ``WorkQueueExecutor`` that lfm refuses at
construction with the reason, never silently ignoring them: ``source``
(``autolabel_window`` has its meaning in :mod:`lfm.parsl.window`)."""
from __future__ import annotations

from typing import Any


def check_source(source: Any, pack: Any) -> None:
    """``source=True`` asks Parsl to ship a python app as its source text
    instead of pickled bytecode. lfm ships every app (python and bash alike)
    with cloudpickle, by reference to its module when the workers can import
    it: there is no source mode to switch to, so True is refused (except with
    ``pack=True``, which implies it in Parsl)."""
    if not isinstance(source, bool):
        raise TypeError(f"source must be a bool, got {source!r}")
    if source and not pack:
        raise ValueError(
            "source=True cannot be honoured: lfm ships every app (python and bash) with "
            "cloudpickle, by reference to its module when the workers can import it, and "
            "has no source-text mode; remove source=True (apps run the same without it)")
