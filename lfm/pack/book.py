"""Per category: the modules its calls imported, and the spec they make.

An :class:`Environments` book is kept by every ``AutolabelExecutor`` (cheap: a
union of small dicts per attempt). :meth:`Environments.observe` adds the
measured imports of one attempt (:attr:`lfm.Resources.imports`);
:meth:`Environments.environment` gives the category's :class:`Spec`, from
the calls that ran (``source="run"``) or, before any has, from the static scan
of the function's module (``source="static scan"``). The spec only grows: a
later call that imports more gives a spec with a new digest, hence a new
package.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lfm.pack.deps import spec_from_imports
from lfm.pack.spec import Spec


def imports_of(measured: Any) -> dict[str, str | None]:
    """The ``imports`` a measurement carries: of an :class:`lfm.Resources`, or
    of an executor's ``Outcome`` (its own ``imports``, set by the Work Queue
    packing, then its resources'); empty when it has none."""
    out: dict[str, str | None] = {}
    for source in (getattr(measured, "resources", None), measured):
        imports = getattr(source, "imports", None)
        if isinstance(imports, Mapping):
            out.update(imports)
    return out


class Environments:
    """Measured imports per category (thread-safe)."""

    def __init__(self, extra_pkgs: Iterable[str] = (), include_python: bool = False) -> None:
        self.extra_pkgs = list(extra_pkgs)
        self.include_python = bool(include_python)
        self._imports: dict[str, dict[str, str | None]] = {}
        self._functions: dict[str, Callable[..., Any]] = {}
        self._specs: dict[tuple[str, int, str], Spec] = {}
        self._columns: dict[frozenset, str] = {}
        self._hints: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def note(self, category: str, fn: Callable[..., Any]) -> None:
        """Remember the function of a category (for the static scan)."""
        with self._lock:
            self._functions.setdefault(category, fn)

    def observe(self, category: str, measured: Any = None, fn: Callable[..., Any] | None = None,
                imports: Mapping[str, str | None] | None = None) -> bool:
        """Add one attempt's measured imports (of a ``Resources`` or an
        ``Outcome``, see :func:`imports_of`, and/or ``imports``); True when the
        category's set grew."""
        new = {**imports_of(measured), **dict(imports or {})}
        with self._lock:
            if fn is not None:
                self._functions.setdefault(category, fn)
            if not new and category in self._imports:
                return False
            known = self._imports.setdefault(category, {})
            grew = any(name not in known for name in new)
            for name, path in new.items():
                if known.get(name) is None:
                    known[name] = path
            return grew

    def hint(self, category: str, module: str) -> None:
        """A module the category's calls failed to import on a worker: packed
        from now on like ``extra_pkgs`` (with what it requires)."""
        with self._lock:
            hints = self._hints.setdefault(category, [])
            if module not in hints:
                hints.append(module)

    def measured(self, category: str) -> dict[str, str | None] | None:
        """The imports measured for the category, None when no call has run."""
        with self._lock:
            known = self._imports.get(category)
            return dict(known) if known is not None else None

    def categories(self) -> list[str]:
        with self._lock:
            return sorted(set(self._imports) | set(self._functions))

    def environment(self, category: str, fn: Callable[..., Any] | None = None) -> Spec:
        """The category's spec (see the module docstring). Raises KeyError for
        a category never seen, naming the known ones."""
        with self._lock:
            known = self._imports.get(category)
            known = dict(known) if known is not None else None
            fn = fn or self._functions.get(category)
            hints = list(self._hints.get(category, ()))
        if known is not None and (known or fn is None):
            source, imports = "run", known
            key: tuple = (category, "run", frozenset(known.items()), tuple(hints))
        elif fn is not None:
            source, imports = "static scan", None
            key = (category, "static scan", id(fn), tuple(hints))
        else:
            raise KeyError(f"no call of category {category!r} was submitted; known categories: "
                           f"{', '.join(self.categories()) or 'none'}")
        with self._lock:
            cached = self._specs.get(key)
        if cached is not None:
            return cached
        if imports is None:
            from lfm.pack.scan import scan_function
            imports = scan_function(fn)
        spec = spec_from_imports(imports, extra_pkgs=[*self.extra_pkgs, *hints],
                                 include_python=self.include_python, source=source)
        with self._lock:
            self._specs[key] = spec
        return spec

    def column(self, measured: Any) -> str:
        """This attempt's own environment in a trace column: its measured
        imports as distributions with versions and ``+local`` sources."""
        imports = imports_of(measured)
        if not imports:
            return ""
        key = frozenset(imports.items())
        text = self._columns.get(key)
        if text is None:
            text = self._columns[key] = spec_from_imports(imports, runner=False).summary()
        return text
