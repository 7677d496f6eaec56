"""What a call's process imported, recorded where the call runs.

:class:`Recorded` wraps a function sent to a Work Queue worker with
``pack=True``: in the call's own process, after the call, it lists the
non-stdlib top-level modules loaded there (those loaded with the function,
while the runner unpickled it, and those the call imported) with their
files, and sends them back beside the result (:class:`WithImports`) or on the
exception (``lfm_imports``). It is the same record as
:attr:`lfm.Resources.imports` and works whether or not the monitor provides it.
"""
from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def current_imports() -> dict[str, str | None]:
    """Top-level non-stdlib modules in ``sys.modules`` -> their files."""
    stdlib = sys.stdlib_module_names
    out: dict[str, str | None] = {}
    for name, module in list(sys.modules.items()):
        if "." in name or name in stdlib or name in sys.builtin_module_names or module is None:
            continue
        if name.startswith(("__editable__", "_distutils_hack", "__main__", "__mp_main__")):
            continue
        out[name] = getattr(module, "__file__", None)
    return out


class WithImports:
    """A call's result with the imports of its process."""

    __slots__ = ("value", "imports")

    def __init__(self, value: Any, imports: dict[str, str | None]) -> None:
        self.value = value
        self.imports = imports

    def __reduce__(self):
        return (WithImports, (self.value, self.imports))


class Recorded:
    """``fn`` whose call also reports its process's imports (module docstring)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> WithImports:
        try:
            value = self.fn(*args, **kwargs)
        except BaseException as exc:
            try:
                exc.lfm_imports = current_imports()
            except Exception:  # noqa: BLE001 - an exception that takes no attributes
                pass
            raise
        return WithImports(value, current_imports())

    def __getattr__(self, name: str) -> Any:  # __qualname__, lfm_include_root, ...
        if name == "fn":
            raise AttributeError(name)
        return getattr(self.fn, name)

    def __reduce__(self):
        return (Recorded, (self.fn,))
