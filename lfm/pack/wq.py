"""``pack=True`` on the Work Queue backend.

For every attempt, :meth:`WorkQueuePack.task` takes the spec of the attempt's
category (measured imports, or the static scan before any call ran; see
:class:`lfm.pack.book.Environments`), gets its package from the
:class:`~lfm.pack.build.PackageCache` (built once per spec), adds it and the
worker-side script (:mod:`lfm.pack.unpack`) to the task as *cached* input
files, and wraps the task's command: ``python lfm-pack-run-*.py
lfm-env-*.tar.gz -- <runner command>`` (with ``include_python``: ``sh
lfm-pack-boot-*.sh ...``, for workers without Python). A worker therefore receives each
package once, unpacks it once (under a lock), and every later task of that
spec starts at once.

:meth:`WorkQueuePack.wrap` wraps the backend's ``done`` callback: it adds each
attempt's measured imports to its category (so a category whose calls import
more gets a new package), counts unpackings, and retries once, with a package
rebuilt from the measured dependencies plus the missing module, an attempt
that failed with ``ImportError``/``ModuleNotFoundError`` for a module
installed here. Only then is the failure reported.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import shlex
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from lfm.pack.book import Environments
from lfm.pack.build import Package, PackageCache
from lfm.pack.deps import is_stdlib, missing_module, module_file

REPORT = "lfm-pack.json"


def wrapper_script(directory: str, include_python: bool = False) -> tuple[str, str]:
    """A copy of :mod:`lfm.pack.unpack` (or, for packages with their own
    interpreter, the sh bootstrap :data:`lfm.pack.python.BOOT`) in
    ``directory``, named by its content (``lfm-pack-run-<sha8>.py``,
    ``lfm-pack-boot-<sha8>.sh``): (path, name)."""
    if include_python:
        from lfm.pack.python import BOOT
        data = BOOT.encode()
        name = f"lfm-pack-boot-{hashlib.sha256(data).hexdigest()[:8]}.sh"
    else:
        from lfm.pack import unpack
        with open(unpack.__file__, "rb") as f:
            data = f.read()
        name = f"lfm-pack-run-{hashlib.sha256(data).hexdigest()[:8]}.py"
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        os.makedirs(directory, exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return path, name


class WorkQueuePack:
    """The Work Queue backend's packing (see the module docstring).

    ``stats`` (dict): ``packages_built``, ``build_time`` (s), ``packages`` (the
    distinct packages used), ``unpacked`` / ``reused`` (tasks that unpacked
    their package on the worker / found it unpacked), ``unpack_time`` (s),
    ``import_retries``. ``packages`` maps each package's name to its
    :class:`~lfm.pack.build.Package`.
    """

    def __init__(self, python: str, extra_pkgs: Iterable[str] = (), include_python: bool = False,
                 cache_dir: str | None = None) -> None:
        self.environments = Environments(extra_pkgs, include_python)
        self.environment(None)  # check extra_pkgs now: a clear error at construction
        self.cache = PackageCache(cache_dir)
        self.python = python
        self.script, self.script_name = wrapper_script(self.cache.directory, include_python)
        #: what runs the worker-side script: the worker's Python, or sh for a
        #: package that brings its own interpreter
        self.launcher = "sh" if include_python else python
        self.packages: dict[str, Package] = {}
        self.stats: dict[str, float] = {"packages_built": 0, "build_time": 0.0, "packages": 0,
                                        "unpacked": 0, "reused": 0, "unpack_time": 0.0,
                                        "import_retries": 0}
        self._reports = tempfile.mkdtemp(prefix="lfm-pack-reports-")
        weakref.finalize(self, shutil.rmtree, self._reports, True)
        self._seq = itertools.count(1)
        self._current: dict[str, Package] = {}
        self._sources: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def environment(self, category: str | None, fn: Callable[..., Any] | None = None) -> Any:
        if category is None:
            from lfm.pack.deps import spec_from_imports
            return spec_from_imports({}, extra_pkgs=self.environments.extra_pkgs)
        return self.environments.environment(category, fn)

    def package(self, category: str, fn: Callable[..., Any]) -> Package:
        """The package of the category's current spec: the category's current
        package while it still holds everything the spec names (same
        versions, same local sources' contents), else the spec's own package
        (built if new). So measured dependencies that are fewer than the
        static scan's keep the package the worker already has, and
        dependencies that grow get a new one."""
        spec = self.environments.environment(category, fn)
        with self._lock:
            current = self._current.get(category)
            if current is not None and self._covers(current, spec):
                return current
            package = self.cache.get(spec)
            if package.built:
                self.stats["packages_built"] += 1
                self.stats["build_time"] += package.build_time
            if package.name not in self.packages:
                self.packages[package.name] = package
                self.stats["packages"] = len(self.packages)
                self._sources[package.name] = {n: _local_digest(n, p) for n, p in spec.local.items()}
            self._current[category] = package
        return package

    def _covers(self, package: Package, spec: Any) -> bool:
        have = package.spec
        if spec.include_python and not have.include_python:
            return False
        if any(have.distributions.get(n) != v for n, v in spec.distributions.items()):
            return False
        if any(have.editable.get(n) != v for n, v in spec.editable.items()):
            return False
        sources = self._sources.get(package.name, {})
        return all(have.local.get(n) == p and sources.get(n) == _local_digest(n, p)
                   for n, p in spec.local.items())

    def function(self, attempt: Any) -> Any:
        """The attempt's function, wrapped to report its process's imports
        (:class:`lfm.pack.record.Recorded`)."""
        from lfm.pack.record import Recorded
        return Recorded(attempt.fn)

    def task(self, attempt: Any, spec: dict[str, Any]) -> dict[str, Any]:
        """Work Queue task ``spec`` of ``attempt``, running inside its package."""
        self.environments.note(attempt.category, attempt.fn)
        package = self.package(attempt.category, attempt.fn)
        report = os.path.join(self._reports, f"{next(self._seq)}.json")
        attempt.extra["package"] = package.path
        attempt.extra["package_report"] = report
        spec = dict(spec)
        spec["inputs"] = [*spec["inputs"], (package.path, package.name, True),
                          (self.script, self.script_name, True)]
        spec["outputs"] = [*spec["outputs"], (report, REPORT, False)]
        spec["env"] = {**spec.get("env", {}), "LFM_PACK_REPORT": REPORT}
        spec["extra"] = dict(attempt.extra)
        launcher = shlex.quote(self.launcher) + ("" if self.launcher == "sh" else " -S")
        command = spec["command"]
        if any(c in command for c in ";&|<>$`"):  # e.g. the backend's "init_command; runner"
            command = f"/bin/sh -c {shlex.quote(command)}"
        spec["command"] = f"{launcher} {self.script_name} {package.name} -- {command}"
        return spec

    def wrap(self, done: Callable[[Any, Any], None], resubmit: Callable[[Any], None]
             ) -> Callable[[Any, Any], None]:
        """``done`` with the bookkeeping and the import-error retry in front;
        ``resubmit(attempt)`` submits an attempt again."""
        def pack_done(attempt: Any, outcome: Any) -> None:
            from lfm.pack.record import WithImports
            self._read_report(attempt)
            # a worker's paths mean nothing here: keep the names, resolved on this side
            if isinstance(outcome.value, WithImports):
                outcome.imports = dict.fromkeys(outcome.value.imports)
                outcome.value = outcome.value.value
            elif getattr(outcome.error, "lfm_imports", None) is not None:
                outcome.imports = dict.fromkeys(outcome.error.lfm_imports)
            self.environments.observe(attempt.category, outcome, attempt.fn)
            name = missing_module(outcome.error) if outcome.status == "error" else None
            if (name and "package" in attempt.extra and not attempt.extra.get("pack_retried")
                    and not is_stdlib(name) and module_file(name) is not None):
                attempt.extra["pack_retried"] = name
                self.environments.hint(attempt.category, name)
                with self._lock:
                    self.stats["import_retries"] += 1

                def again() -> None:
                    try:
                        resubmit(attempt)
                    except Exception:  # noqa: BLE001 - report the original failure instead
                        done(attempt, outcome)
                threading.Thread(target=again, name="lfm-pack-retry", daemon=True).start()
                return
            done(attempt, outcome)
        return pack_done

    def _read_report(self, attempt: Any) -> None:
        path = attempt.extra.get("package_report")
        if not path:
            return
        try:
            with open(path, encoding="utf-8") as f:
                report = json.load(f)
            os.unlink(path)
        except (OSError, ValueError):
            return
        with self._lock:
            if report.get("unpack_time"):
                self.stats["unpacked"] += 1
                self.stats["unpack_time"] += float(report["unpack_time"])
            else:
                self.stats["reused"] += 1

def _local_digest(name: str, path: str) -> str:
    from lfm.pack.spec import Spec
    return Spec(local={name: path}, python="").digest()


def make_pack(pack: bool, python: str, extra_pkgs: Iterable[str] | None = None,
              include_python: bool = False, cache_dir: str | None = None) -> WorkQueuePack | None:
    """The backend's packing, or None with ``pack=False`` (then ``extra_pkgs``
    and ``include_python`` must not be given)."""
    check_pack_options(pack, extra_pkgs, include_python, installed=False)  # WorkQueuePack checks it
    if not pack:
        return None
    return WorkQueuePack(python, extra_pkgs or (), include_python, cache_dir)


def check_pack_options(pack: bool, extra_pkgs: Iterable[str] | None, include_python: bool, *,
                       ignore_extra: bool = False, installed: bool = True) -> None:
    """Refuse ``include_python`` (and ``extra_pkgs``, unless ``ignore_extra``:
    Parsl's meaning, where they do nothing then and a warning says so)
    without ``pack``; with it and ``installed``, check now that
    ``extra_pkgs`` names distributions installed here (lfm packs only those)."""
    if isinstance(extra_pkgs, str):
        raise TypeError(f"extra_pkgs must be a list of distribution names, not the string {extra_pkgs!r}")
    if not pack:
        if include_python or (extra_pkgs and not ignore_extra):
            raise ValueError("extra_pkgs and include_python=True add to the package of each "
                             "category's environment: they need pack=True")
        if extra_pkgs:
            import logging
            logging.getLogger("lfm.pack").warning(
                "lfm: extra_pkgs=%s has no effect without pack=True (as in Parsl)", list(extra_pkgs))
        return
    if installed:
        from lfm.pack.deps import spec_from_imports
        spec_from_imports({}, extra_pkgs=list(extra_pkgs or []))
