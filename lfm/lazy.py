"""Package attributes imported on first use (PEP 562).

The Work Queue runner starts once per task and imports ``lfm``,
``lfm.monitor`` and ``lfm.executors`` on its way to the code it needs, so
those packages name their public API without importing it.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, homes: Mapping[str, str], namespace: dict
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: attribute ``name`` is
    ``package.<homes[name]>.<name>``, imported on first access and then kept
    in ``namespace`` (the package's ``globals()``)."""
    def __getattr__(name: str) -> object:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(homes))

    return __getattr__, __dir__
