"""Build a package from a :class:`~lfm.pack.spec.Spec`, offline, and cache it.

A package is a ``.tar.gz`` holding

- ``lfm-env.json``: the spec (Poncho's format), its digest and the file count;
- ``site/``: every file of each distribution as its ``RECORD`` lists it
  (those inside its site directory: metadata, modules, compiled extensions,
  bundled libraries such as ``numpy.libs``), then the local sources (a
  script's helpers, editable installs' source trees); it goes first on the
  worker's ``PYTHONPATH``;
- ``python/``: with ``include_python``, the interpreter (:mod:`lfm.pack.python`),
  and ``lfm-pack-run.py`` (:mod:`lfm.pack.unpack`) that its bootstrap runs.

Nothing is downloaded: the files are this environment's own. The archive is
deterministic (sorted members, owner 0, the files' own mtimes so that
bytecode stays valid, gzip without a timestamp), named by the spec's digest
(``lfm-env-<digest16>.tar.gz``), built once per spec and kept in the cache
directory (:func:`cache_dir`).
"""
from __future__ import annotations

import fcntl
import gzip
import importlib.metadata as metadata
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

from lfm.pack.spec import Spec, source_files

#: gzip level of packages: 1 builds several times faster than 6 for ~10 % more bytes
COMPRESSLEVEL = 1


def cache_dir() -> str:
    """Where packages are kept on the manager's side: ``$LFM_PACK_CACHE``, else
    ``$XDG_CACHE_HOME/lfm/packages`` (``~/.cache/lfm/packages``). Delete the
    directory to clean it; packages are rebuilt on demand."""
    explicit = os.environ.get("LFM_PACK_CACHE")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lfm", "packages")


@dataclass
class Package:
    """A built package: ``path``, ``digest``, ``size_mb`` (MB of the archive),
    ``build_time`` (s it took to build, when built), ``files`` (count),
    ``built`` (True when this call built it, False when it came from the cache)."""

    path: str
    digest: str
    size_mb: float
    build_time: float
    files: int
    built: bool
    spec: Spec

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


def package_name(digest: str) -> str:
    return f"lfm-env-{digest[:16]}.tar.gz"


def distribution_files(name: str) -> Iterator[tuple[str, str]]:
    """``(path inside site/, file on disk)`` of an installed distribution, from
    its ``RECORD``; files outside its site directory (scripts in ``bin/``) and
    files missing on disk are left out."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise ValueError(f"distribution {name!r} is not installed here; lfm packs installed "
                         "distributions only") from None
    if dist.read_text("RECORD") is None:
        raise ValueError(f"distribution {name!r} has no RECORD (not installed by pip?): "
                         "cannot list its files")
    base = os.path.realpath(str(dist.locate_file("")))
    for entry in dist.files or ():
        path = os.path.realpath(str(dist.locate_file(entry)))
        rel = os.path.relpath(path, base)
        if rel.startswith("..") or os.path.isabs(rel) or not os.path.isfile(path):
            continue
        yield rel, path


def package_members(spec: Spec) -> list[tuple[str, str]]:
    """Every ``(archive name, file on disk)`` of the package of ``spec``, sorted."""
    members: dict[str, str] = {}
    for name, version in sorted(spec.distributions.items()):
        installed = metadata.version(name)
        if installed != version:
            raise ValueError(f"the spec asks for {name}=={version} but {installed} is installed; "
                             "lfm packs the installed one")
        for rel, path in distribution_files(name):
            members.setdefault(f"site/{rel}", path)
    for name, source in sorted(spec.local.items()):
        for rel, path in source_files(source, name):
            members[f"site/{rel}"] = path
    if spec.include_python:
        from lfm.pack import unpack
        from lfm.pack.python import python_members
        for rel, path in python_members():
            members[f"python/{rel}"] = path
        members["lfm-pack-run.py"] = unpack.__file__  # run by the sh bootstrap
    return sorted(members.items())


def build_package(spec: Spec, out_path: str, *, compresslevel: int = COMPRESSLEVEL) -> Package:
    """Write the package of ``spec`` to ``out_path`` (atomically); its :class:`Package`."""
    started = time.perf_counter()
    digest = spec.digest()
    members = package_members(spec)
    manifest = json.dumps({"digest": digest, "spec": spec.to_poncho(), "files": len(members)},
                          indent=1, sort_keys=True).encode()
    directory = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".building-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as raw, \
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                              compresslevel=compresslevel) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo("lfm-env.json")
            info.size, info.mode, info.mtime = len(manifest), 0o644, 0
            import io
            tar.addfile(info, io.BytesIO(manifest))
            for arcname, path in members:
                info = tar.gettarinfo(path, arcname=arcname)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                if info.isfile():
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return Package(out_path, digest, os.path.getsize(out_path) / 2**20,
                   time.perf_counter() - started, len(members), True, spec)


class PackageCache:
    """Packages by spec digest in ``directory`` (default :func:`cache_dir`):
    :meth:`get` builds a spec's package once, under a file lock (concurrent
    builders of one spec wait for the first), and returns it from then on."""

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory or cache_dir()
        self._known: dict[str, Package] = {}

    def get(self, spec: Spec) -> Package:
        digest = spec.digest()
        known = self._known.get(digest)
        if known is not None and os.path.exists(known.path):
            return Package(**{**known.__dict__, "built": False})
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, package_name(digest))
        info_path = path[:-len(".tar.gz")] + ".json"
        with open(path + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if os.path.exists(path) and os.path.exists(info_path):
                with open(info_path, encoding="utf-8") as f:
                    info = json.load(f)
                package = Package(path, digest, os.path.getsize(path) / 2**20,
                                  float(info.get("build_time", 0.0)), int(info.get("files", 0)),
                                  False, spec)
            else:
                package = build_package(spec, path)
                with open(info_path, "w", encoding="utf-8") as f:
                    json.dump({"build_time": package.build_time, "files": package.files,
                               "size_mb": package.size_mb, "spec": spec.to_poncho()}, f, indent=1)
        self._known[digest] = package
        return package
