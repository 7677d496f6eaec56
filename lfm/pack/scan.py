"""The static fallback: the imports of a function's module, read with ``ast``.

Before a category has run once there is no measurement; like Poncho's
analyzer, lfm then reads the ``import`` statements of the function's module
(everywhere in it, function bodies included) and, unlike it, follows the
local modules found that way (a script's helper beside it), so their imports
count too. The result has the shape of :attr:`lfm.Resources.imports`:
top-level module name -> file (``None`` when not found here).
"""
from __future__ import annotations

import ast
import os
import sys
from collections.abc import Callable
from typing import Any

from lfm.pack.deps import is_stdlib, module_file, providers


def imports_in_source(source: str, filename: str = "<source>") -> set[str]:
    """Top-level names of the absolute imports in Python source."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise ValueError(f"{filename}:{exc.lineno}: cannot scan its imports: {exc.msg}") from None
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def scan_file(path: str, *, follow_local: bool = True) -> dict[str, str | None]:
    """Non-stdlib top-level imports of the file at ``path`` -> their files,
    resolved with this interpreter's path and the file's own directory (as a
    script would see them); local modules found are scanned in turn."""
    directory = os.path.dirname(os.path.abspath(path))
    added = directory not in sys.path
    if added:
        sys.path.insert(0, directory)
    try:
        found: dict[str, str | None] = {}
        todo, seen = [os.path.abspath(path)], set()
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            with open(current, encoding="utf-8") as f:
                names = imports_in_source(f.read(), current)
            for name in sorted(names):
                if is_stdlib(name) or name in found:
                    continue
                file = module_file(name)
                found[name] = file
                if follow_local and file and file.endswith(".py") and name not in providers():
                    if os.path.basename(file) == "__init__.py":
                        todo += _package_files(os.path.dirname(file))
                    else:
                        todo.append(file)
        return found
    finally:
        if added:
            sys.path.remove(directory)


def _package_files(directory: str) -> list[str]:
    out = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if d != "__pycache__" and not d.startswith(".")]
        out += [os.path.join(root, f) for f in files if f.endswith(".py")]
    return out


def scan_function(fn: Callable[..., Any]) -> dict[str, str | None]:
    """The static scan of ``fn``'s module (see the module docstring); the
    module itself is included when it is importable by name (not ``__main__``:
    cloudpickle sends a script's functions by value)."""
    module_name = getattr(fn, "__module__", None) or ""
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if not path or not path.endswith(".py") or not os.path.exists(path):
        raise ValueError(f"cannot scan the imports of {getattr(fn, '__qualname__', fn)!r}: its module "
                         f"{module_name!r} has no Python source file")
    found = scan_file(path)
    top = module_name.split(".")[0]
    if module_name not in ("__main__", "__mp_main__") and not is_stdlib(top):
        found.setdefault(top, module_file(top))
    return found


def scan_target(target: str) -> tuple[dict[str, str | None], str]:
    """``SCRIPT`` (a path) or ``MODULE[:FUNCTION]``: its static imports, and a
    description of what was scanned."""
    if os.path.exists(target) or target.endswith(".py"):
        if not os.path.isfile(target):
            raise ValueError(f"{target}: no such script")
        return scan_file(target), target
    module_name, _, function = target.partition(":")
    import importlib
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} to scan it: {exc}") from None
    if function:
        fn = module
        for part in function.split("."):
            try:
                fn = getattr(fn, part)
            except AttributeError:
                known = ", ".join(sorted(n for n in dir(module) if not n.startswith("_")))
                raise ValueError(f"module {module_name!r} has no {function!r}; it has: {known}") from None
        return scan_function(fn), target
    path = getattr(module, "__file__", None)
    if not path:
        raise ValueError(f"module {module_name!r} has no source file to scan")
    found = scan_file(path)
    top = module_name.split(".")[0]
    found.setdefault(top, module_file(top))
    return found, target
