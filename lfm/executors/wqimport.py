"""Locate and load the Work Queue Python module.

Order: ``ndcctools.work_queue`` (the cctools conda / pip package), then a
``work_queue`` importable from ``sys.path``, then Debian's python3-workqueue
loaded *by file path* from ``/usr/lib/python3/dist-packages`` (so that directory,
which holds Debian's builds of numpy, pandas, ... for the system Python, is never
put ahead of the virtual environment's packages on ``sys.path``).
"""
from __future__ import annotations

import glob
import importlib
import importlib.util
import os
import sys
from types import ModuleType

#: Where Debian's python3-workqueue installs ``work_queue.py`` and its extension.
DEBIAN_DIST_PACKAGES = "/usr/lib/python3/dist-packages"

INSTALL_HINT = ("install cctools' Python bindings: on Debian/Ubuntu "
                "`apt-get install coop-computing-tools python3-workqueue`, "
                "or `conda install -c conda-forge ndcctools`")

_cached: ModuleType | None = None


def load_work_queue(search_dir: str | None = None) -> ModuleType:
    """The Work Queue module (cached after the first successful load).

    ``search_dir``: directory holding ``work_queue.py`` and ``_work_queue*.so``
    for the by-path fallback (default: ``$LFM_WORK_QUEUE_DIR`` or Debian's
    dist-packages). Raises ``ImportError`` naming the packages to install when
    no Work Queue module can be loaded.
    """
    global _cached
    if _cached is not None:
        return _cached
    errors: list[str] = []
    for name in ("ndcctools.work_queue", "work_queue"):
        try:
            _cached = importlib.import_module(name)
            return _cached
        except ImportError as exc:
            errors.append(f"import {name}: {exc}")
    directory = search_dir or os.environ.get("LFM_WORK_QUEUE_DIR", DEBIAN_DIST_PACKAGES)
    try:
        _cached = _load_by_path(directory)
        return _cached
    except ImportError as exc:
        errors.append(str(exc))
    raise ImportError("Work Queue's Python module was not found (" + "; ".join(errors)
                      + f"); {INSTALL_HINT}")


def work_queue_available() -> tuple[bool, str]:
    """``(True, "")`` when Work Queue can be loaded and ``work_queue_worker`` is on
    PATH, else ``(False, reason)`` (for skips and error messages)."""
    import shutil
    try:
        load_work_queue()
    except ImportError as exc:
        return False, str(exc)
    if shutil.which("work_queue_worker") is None:
        return False, f"work_queue_worker is not on PATH; {INSTALL_HINT}"
    return True, ""


def _load_by_path(directory: str) -> ModuleType:
    source = os.path.join(directory, "work_queue.py")
    extensions = sorted(glob.glob(os.path.join(directory, "_work_queue*.so")))
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    matching = [e for e in extensions if tag in os.path.basename(e) or
                os.path.basename(e) == "_work_queue.so"]
    if not os.path.isfile(source) or not matching:
        found = ", ".join(os.path.basename(e) for e in extensions) or "none"
        raise ImportError(f"no work_queue.py with a _work_queue extension for {tag} in {directory} "
                          f"(extensions found: {found})")
    # work_queue.py does `import _work_queue`; register the extension under that
    # name first so the import resolves without touching sys.path.
    extension = _exec_module("_work_queue", matching[0])
    try:
        return _exec_module("work_queue", source)
    except Exception:
        sys.modules.pop("_work_queue", None)
        del extension
        raise


def _exec_module(name: str, path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {name} from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ImportError(f"loading {path} failed: {exc}") from exc
    return module
