"""A software environment as lfm packs it: the :class:`Spec`.

A spec names the installed distributions a call needs, with their exact
versions, and the local source trees (modules of no distribution: a script's
helper modules, a package on ``PYTHONPATH``, an editable install's source) to
ship with them. It is written as Poncho's JSON spec (``{"conda": {...},
"pip": [...]}``, plus an ``"lfm"`` section that Poncho ignores) or as a
``requirements.txt``, and read back from the JSON. Its :meth:`Spec.digest`
addresses the package built from it: the same spec gives the same package.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: bump when the package layout changes (part of every digest)
FORMAT = 1


def python_tag() -> str:
    """``cpython-3.11-x86_64``: what a worker's Python must match (minor version,
    implementation and machine, because of compiled extensions)."""
    return f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}-{platform.machine()}"


@dataclass
class Spec:
    """What a package holds.

    ``distributions``: distribution name -> exact installed version.
    ``local``: top-level module name -> path of its source (a ``.py`` file, an
    extension module, or a package directory) shipped as is; editable installs
    are shipped this way too (``editable`` names them: distribution -> version).
    ``include_python``: also pack this interpreter (see :mod:`lfm.pack.python`).
    ``source``: how the spec was obtained, ``"run"`` (measured imports of
    calls), ``"static scan"`` or ``"file"``. ``python``: :func:`python_tag`.
    """

    distributions: dict[str, str] = field(default_factory=dict)
    local: dict[str, str] = field(default_factory=dict)
    editable: dict[str, str] = field(default_factory=dict)
    include_python: bool = False
    source: str = "run"
    python: str = field(default_factory=python_tag)
    #: notes for the user (modules that could not be resolved, ...)
    notes: list[str] = field(default_factory=list)

    # ---- identity ----------------------------------------------------------------------
    def digest(self) -> str:
        """Hex sha256 over what determines the package's content: distributions
        and versions, the local sources' names and contents, the Python tag,
        ``include_python`` and lfm's package format."""
        h = hashlib.sha256()
        h.update(json.dumps({"format": FORMAT, "python": self.python,
                             "include_python": self.include_python,
                             "distributions": sorted(self.distributions.items()),
                             "editable": sorted(self.editable.items())}).encode())
        for name in sorted(self.local):
            h.update(f"\0local {name}\0".encode())
            for rel, path in source_files(self.local[name], name):
                h.update(rel.encode() + b"\0")
                h.update(_file_digest(path))
        return h.hexdigest()

    def merged(self, other: "Spec") -> "Spec":
        """A spec with both specs' distributions and local sources (``self`` wins ties)."""
        return Spec({**other.distributions, **self.distributions}, {**other.local, **self.local},
                    {**other.editable, **self.editable}, self.include_python or other.include_python,
                    self.source, self.python, [*self.notes, *(n for n in other.notes if n not in self.notes)])

    def summary(self) -> str:
        """One line: ``numpy==2.4.6 pandas==2.3.3 +helper`` (``+`` local sources)."""
        parts = [f"{n}=={v}" for n, v in sorted(self.distributions.items())]
        parts += [f"+{n}" for n in sorted(self.local)]
        return " ".join(parts)

    # ---- writing -----------------------------------------------------------------------
    def to_poncho(self) -> dict[str, Any]:
        """Poncho's JSON spec: conda gives the Python, pip the exact
        distributions, nested in ``conda.dependencies`` as
        ``poncho_package_create`` reads them and repeated as a top-level
        ``"pip"`` list; the ``"lfm"`` section (local sources, editable
        installs) is lfm's own and ignored by Poncho."""
        major_minor = self.python.split("-")[1] if self.python.count("-") >= 2 else ""
        pip = [f"{n}=={v}" for n, v in sorted(self.distributions.items())]
        python = f"python={major_minor}" if major_minor else "python"
        return {"conda": {"channels": ["conda-forge"], "dependencies": [python, "pip", {"pip": pip}]},
                "pip": list(pip),
                "lfm": {"local": dict(sorted(self.local.items())),
                        "editable": dict(sorted(self.editable.items())),
                        "include_python": self.include_python, "python": self.python,
                        "source": self.source, "notes": list(self.notes)}}

    def to_json(self) -> str:
        return json.dumps(self.to_poncho(), indent=2) + "\n"

    def to_requirements(self) -> str:
        """``requirements.txt``: one ``name==version`` a line; local sources and
        editable installs as comments (pip cannot install them from a name)."""
        lines = [f"{n}=={v}" for n, v in sorted(self.distributions.items())]
        lines += [f"# editable install, shipped as source: {n}=={v}" for n, v in sorted(self.editable.items())]
        lines += [f"# local source, shipped as is: {n} ({p})" for n, p in sorted(self.local.items())]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_poncho(cls, data: Mapping[str, Any], where: str = "spec") -> "Spec":
        """Read a Poncho-style spec (as :meth:`to_poncho` writes, or Poncho's own
        with only ``pip`` entries of the form ``name==version``)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: a spec is a JSON object with 'pip' (and 'conda', 'lfm'); "
                             f"got {type(data).__name__}")
        unknown = sorted(set(data) - {"conda", "pip", "lfm", "git", "http"})
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; known: conda, pip, lfm")
        dists = {}
        entries = list(data.get("pip") or [])
        conda = data.get("conda") or {}
        for dep in (conda.get("dependencies") or []) if isinstance(conda, Mapping) else []:
            if isinstance(dep, Mapping):  # Poncho's {"pip": [...]} inside conda's dependencies
                entries += [e for e in dep.get("pip") or [] if e not in entries]
        for i, entry in enumerate(entries):
            name, sep, version = str(entry).partition("==")
            if not sep or not name.strip() or not version.strip():
                raise ValueError(f"{where}: pip[{i}] = {entry!r}: lfm packs installed distributions "
                                 "and needs an exact 'name==version'")
            dists[name.strip()] = version.strip()
        own = data.get("lfm") or {}
        local = {str(k): str(v) for k, v in (own.get("local") or {}).items()}
        for name, path in local.items():
            if not os.path.exists(path):
                raise ValueError(f"{where}: local source {name!r} at {path!r} does not exist")
        return cls(dists, local, {str(k): str(v) for k, v in (own.get("editable") or {}).items()},
                   bool(own.get("include_python", False)), "file", str(own.get("python") or python_tag()),
                   list(own.get("notes") or []))

    @classmethod
    def read(cls, path: str) -> "Spec":
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
        return cls.from_poncho(data, where=path)


def source_files(path: str, name: str) -> list[tuple[str, str]]:
    """``(path inside site/, file on disk)`` of one local source: a module file
    goes as its own name, a package directory as ``name/...`` (without
    ``__pycache__`` or dot-directories), sorted."""
    if os.path.isfile(path):
        return [(os.path.basename(path), path)]
    out = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        for f in sorted(files):
            if f.endswith((".pyc", ".pyo")):
                continue
            full = os.path.join(root, f)
            out.append((os.path.join(name, os.path.relpath(full, path)), full))
    return out


_digests: dict[tuple[str, int, int], bytes] = {}


def _file_digest(path: str) -> bytes:
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    digest = _digests.get(key)
    if digest is None:
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).digest()
        _digests[key] = digest
    return digest
