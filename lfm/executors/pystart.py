"""How a local Work Queue worker starts the runner's interpreter.

Every task is a new Python process, and in a virtual environment ``site``
(reading the ``.pth`` files, installing editable-install import hooks) is a
large share of its start-up: about a sixth of a trivial task's CPU time, on
the two cores that the workers, their tasks and the manager share. When the
runner is given this process's ``sys.path`` anyway (local workers are), ``site``
adds nothing *provided* it does nothing but add paths. :func:`site_free_paths`
decides that from the environment's own files, the same way whatever process
asks: then the runner starts with ``python -S`` and the paths returned here,
and restores what ``site`` would have set up for the call (the ``exit``,
``quit`` and ``help`` builtins, a virtual environment's ``sys.prefix``).
Anything else in a ``.pth`` file, or a ``sitecustomize``/``usercustomize``
module, keeps the ordinary start.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable

#: ``.pth`` lines that only affect ``import distutils`` (setuptools' shim)
HARMLESS = r"import os; var = 'SETUPTOOLS_USE_DISTUTILS'.*_distutils_hack.*"
#: setuptools' editable installs (PEP 660): ``import __editable___NAME_finder; ....install()``
EDITABLE = r"import (__editable___\w+_finder); \1\.install\(\)"


def site_free_paths(site_dirs: Iterable[str] | None = None) -> list[str] | None:
    """The directories to put on ``sys.path`` (beyond this process's own
    ``sys.path``) for a ``python -S`` runner to import what one started
    normally imports; ``None`` when ``site`` does more than add paths here, so
    the runner must start normally. ``site_dirs``: the site-packages
    directories to read (default: this interpreter's, user site included)."""
    if sys.flags.no_site:
        return []  # this process itself started without site: nothing to lose
    import importlib.util
    import re  # here: the runner imports this module for restore_site, without site's re
    harmless, editable = re.compile(HARMLESS), re.compile(EDITABLE)
    if any(importlib.util.find_spec(name) is not None for name in ("sitecustomize", "usercustomize")):
        return None
    if site_dirs is None:
        import site
        site_dirs = list(site.getsitepackages())
        if site.ENABLE_USER_SITE:
            site_dirs.append(site.getusersitepackages())
    extra: list[str] = []
    for directory in site_dirs:
        try:
            names = sorted(n for n in os.listdir(directory) if n.endswith(".pth"))
        except OSError:
            continue
        for name in names:
            try:
                with open(os.path.join(directory, name), encoding="utf-8") as f:
                    lines = [line.strip() for line in f]
            except (OSError, UnicodeDecodeError):
                return None
            for line in lines:
                if not line.startswith(("import ", "import\t")):
                    continue  # a path (already on sys.path when it exists) or a comment
                if harmless.fullmatch(line):
                    continue
                match = editable.fullmatch(line)
                roots = _editable_roots(match.group(1)) if match else None
                if roots is None:
                    return None
                extra += [r for r in roots if r not in extra]
    return extra


def local_runner(python: str, own: bool, env: dict[str, str], staging: str) -> str:
    """The runner's command line (before its IN and OUT arguments) for local
    workers, which import what this process can: ``env`` (the tasks'
    environment, updated) gets this process's ``sys.path`` and working
    directory as ``PYTHONPATH`` unless it has one. ``own``: ``python`` is this
    process's interpreter, so where :func:`site_free_paths` allows, the runner
    starts without ``site``. Under ``PYTHONDONTWRITEBYTECODE`` the tasks share
    a bytecode cache in ``staging``."""
    import shlex
    runner = f"{python} -m lfm.executors.runner"
    if "PYTHONPATH" not in env:
        paths = [p for p in sys.path if p and os.path.exists(p)]
        extra = site_free_paths() if own else None
        if extra is not None:
            # site would only add paths, which PYTHONPATH gives: skip it; editable
            # installs' roots go last, where their import hooks would have found them
            runner = (f"{shlex.quote(python)} -S -m lfm.executors.runner --prefix {shlex.quote(sys.prefix)} "
                      f"--exec-prefix {shlex.quote(sys.exec_prefix)}")
            paths += [p for p in extra if p not in paths]
        env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), *paths])
    if os.environ.get("PYTHONDONTWRITEBYTECODE") and "PYTHONPYCACHEPREFIX" not in env:
        # every task starts a runner, and PYTHONDONTWRITEBYTECODE (set in many
        # container images) would make each compile lfm and the user's modules
        # from source again: let them share bytecode in the staging directory
        # instead, still outside the source tree
        env["PYTHONPYCACHEPREFIX"] = os.path.join(staging, "pycache")
        env.setdefault("PYTHONDONTWRITEBYTECODE", "")
    return runner


def _editable_roots(module: str) -> list[str] | None:
    """The directories holding an editable install's top-level packages and
    modules (its finder's ``MAPPING``), or None when it maps anything a path
    entry cannot stand for."""
    import importlib
    try:
        mapping = getattr(sys.modules.get(module) or importlib.import_module(module), "MAPPING", None)
    except Exception:  # noqa: BLE001 - a finder we cannot read: start normally
        return None
    if not isinstance(mapping, dict):
        return None
    roots = []
    for name, path in mapping.items():
        path = str(path).rstrip(os.sep)
        if os.path.basename(path) not in (name, f"{name}.py"):
            return None  # a package installed under another name: only the hook can find it
        root = os.path.dirname(path)
        if root not in roots:
            roots.append(root)
    return roots


def restore_site(prefix: str | None, exec_prefix: str | None) -> None:
    """In a runner started with ``-S``: what ``site`` would have set up for the
    call (``exit``/``quit``/``help``/``copyright``... builtins, and the
    virtual environment's ``sys.prefix``/``sys.exec_prefix`` given here)."""
    if not sys.flags.no_site:
        return
    import site  # with -S importing it changes nothing by itself
    site.setquit()
    site.setcopyright()
    site.sethelper()
    if prefix:
        sys.prefix = prefix
    if exec_prefix:
        sys.exec_prefix = exec_prefix
