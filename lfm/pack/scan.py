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
import functools
import os
import sys
import types
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


def app_function(fn: Callable[..., Any]) -> tuple[Callable[..., Any], list[str]]:
    """The user's function inside ``fn``'s wrappers, and the modules that
    define those wrappers (outermost first).

    Followed, in any nesting: ``functools.wraps``' ``__wrapped__`` (Parsl's
    ``wrap_error`` keeps the app's ``__module__``, so the wrapper's own module
    is read from its globals); a callable object holding the function in
    ``.func`` (lfm.parsl's ``RaiseAppErrors``); ``functools.partial``, into
    its function or, when its first positional argument is a plain function,
    into that argument (Parsl's bash apps are
    ``partial(remote_side_bash_executor, app)``)."""
    wrappers: list[str] = []
    seen: set[int] = set()
    while id(fn) not in seen:
        seen.add(id(fn))
        if isinstance(fn, functools.partial):
            if fn.args and isinstance(fn.args[0], types.FunctionType):
                wrappers.append(_defining_module(fn.func))
                fn = fn.args[0]
            else:
                fn = fn.func
        elif getattr(fn, "__wrapped__", None) is not None and callable(fn.__wrapped__):
            wrappers.append(_defining_module(fn))
            fn = fn.__wrapped__
        elif (not isinstance(fn, (types.FunctionType, types.BuiltinFunctionType, type))
              and callable(getattr(fn, "func", None))):
            wrappers.append(_defining_module(fn))
            fn = fn.func
        else:
            break
    return fn, [m for m in dict.fromkeys(wrappers) if m]


def _defining_module(obj: Any) -> str:
    """The module whose code ``obj`` is: a function's globals (not the
    ``__module__`` that ``functools.wraps`` copied), else its class's module."""
    if isinstance(obj, types.FunctionType):
        return obj.__globals__.get("__name__") or ""
    if isinstance(obj, functools.partial):
        return _defining_module(obj.func)
    return getattr(obj, "__module__", None) if isinstance(obj, type) else type(obj).__module__


def scan_function(fn: Callable[..., Any]) -> dict[str, str | None]:
    """The static scan of the module of the user's function inside ``fn``
    (:func:`app_function` unwraps Parsl's and lfm's app wrappers; see the
    module docstring). That module itself is included when it is importable
    by name (not ``__main__``: cloudpickle sends a script's functions by
    value), and so is the top-level package of every wrapper's module (e.g.
    ``parsl``: the worker imports it to run Parsl's wrapper)."""
    user, wrappers = app_function(fn)
    module_name = getattr(user, "__module__", None) or ""
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if not path or not path.endswith(".py") or not os.path.exists(path):
        raise ValueError(f"cannot scan the imports of {getattr(user, '__qualname__', user)!r}: its module "
                         f"{module_name!r} has no Python source file")
    found = scan_file(path)
    for name in (module_name, *wrappers):
        top = name.split(".")[0]
        if name not in ("__main__", "__mp_main__") and top and not is_stdlib(top):
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
