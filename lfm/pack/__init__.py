"""``lfm.pack``: ship each function's measured software environment to workers.

- :mod:`lfm.pack.deps`: imported modules -> installed distributions with exact
  versions (stdlib left out) and local sources;
- :mod:`lfm.pack.scan`: the static fallback (``ast``) before a category has run;
- :mod:`lfm.pack.spec`: the :class:`Spec`, written as Poncho's JSON or a
  ``requirements.txt``;
- :mod:`lfm.pack.build`: a content-addressed package built offline from the
  installed files (each distribution's ``RECORD``) plus local sources, cached;
- :mod:`lfm.pack.python`: ``include_python`` (a relocated interpreter);
- :mod:`lfm.pack.unpack`: the worker side (stdlib only): unpack once under a
  lock, run a command inside;
- :mod:`lfm.pack.record`: a call's imports, recorded in its own process on a
  worker (beside :attr:`lfm.Resources.imports` where the monitor gives them);
- :mod:`lfm.pack.book`, :mod:`lfm.pack.wq`: per-category environments and
  ``pack=True`` on the Work Queue backend.
"""
from lfm.lazy import lazy_exports

# attributes on first use: the executor imports lfm.pack.book for every run,
# and needs neither tarfile nor ast for it
_HOMES = {"Environments": "book", "Package": "build", "PackageCache": "build", "build_package": "build",
          "cache_dir": "build", "missing_module": "deps", "spec_from_imports": "deps",
          "scan_file": "scan", "scan_function": "scan", "scan_target": "scan", "Spec": "spec"}
__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
__all__ = sorted(_HOMES)
