"""From imported modules to a :class:`~lfm.pack.spec.Spec`.

Input: what :attr:`lfm.Resources.imports` records (top-level module name ->
its file, ``None`` when it has none), from a run or from the static scan
(:mod:`lfm.pack.scan`). Each module is mapped to the installed distribution
that provides it (``importlib.metadata.packages_distributions``) with its exact
version; the standard library (``sys.stdlib_module_names``) is left out; a
module of no distribution is a local source, shipped as its file or package
directory. A distribution installed in editable mode (its ``RECORD`` lists a
``.pth`` file or an import hook, not the module) is shipped from its source
tree, like a local source.
"""
from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import os
import sys
from collections.abc import Iterable, Mapping

from lfm.pack.spec import Spec

#: modules that ``site`` itself imports in a virtual environment, never a call
SITE_MACHINERY = ("_distutils_hack", "__editable__", "_virtualenv", "sitecustomize", "usercustomize",
                  "__main__", "__mp_main__")

#: what lfm's Work Queue runner needs on a worker before the call loads:
#: lfm itself and cloudpickle (functions and lambdas travel by value)
RUNNER_MODULES = ("lfm", "cloudpickle")

_providers: dict[str, list[str]] | None = None


def providers() -> dict[str, list[str]]:
    """``packages_distributions()``, computed once per process (deduplicated)."""
    global _providers
    if _providers is None:
        _providers = {k: sorted(set(v)) for k, v in metadata.packages_distributions().items()}
    return _providers


def is_stdlib(name: str) -> bool:
    return name in sys.stdlib_module_names or name in sys.builtin_module_names


def module_file(name: str) -> str | None:
    """The file of a top-level module (its package's ``__init__``), found
    without importing it: from ``sys.modules`` if loaded, else its spec."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None)
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if found is None:
        return None
    return found.origin if found.has_location else None


def spec_from_imports(imports: Mapping[str, str | None], *, extra_pkgs: Iterable[str] = (),
                      runner: bool = True, include_python: bool = False, source: str = "run") -> Spec:
    """The spec of these imports (see the module docstring). ``extra_pkgs``:
    more installed distributions (or top-level modules) by name, optionally
    ``name==version`` (which must be the installed version). ``runner``: add
    what lfm's runner needs (:data:`RUNNER_MODULES`)."""
    spec = Spec(include_python=include_python, source=source)
    wanted = dict(imports)
    if runner:
        for name in RUNNER_MODULES:
            wanted.setdefault(name, module_file(name))
    for name in sorted(wanted):
        _add_module(spec, name, wanted[name])
    if source != "run":
        # a scan sees only the top-level imports: add what pip would install with them
        add_requirements(spec, list(spec.distributions))
    for entry in extra_pkgs:
        before = set(spec.distributions)
        _add_extra(spec, str(entry))
        add_requirements(spec, sorted(set(spec.distributions) - before))
    return spec


def requirements(name: str) -> list[str]:
    """Installed distributions that ``name`` requires (``Requires-Dist`` whose
    marker holds here, extras left out); a requirement not installed is skipped."""
    out = []
    for line in metadata.requires(name) or ():
        try:
            from packaging.requirements import Requirement
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            dep = req.name
        except ImportError:  # no packaging: a plain reading, extras' lines skipped
            if "extra ==" in line:
                continue
            import re
            dep = re.split(r"[\s;<>=!~\[(]", line, maxsplit=1)[0]
        except Exception:  # noqa: BLE001 - an unparsable line: skip it
            continue
        try:
            metadata.distribution(dep)
        except metadata.PackageNotFoundError:
            continue
        out.append(dep)
    return out


def add_requirements(spec: Spec, names: list[str]) -> None:
    """Add the installed requirement closure of ``names`` to the spec."""
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        for dep in requirements(name):
            dist = metadata.distribution(dep)
            canonical = dist.metadata["Name"] or dep
            if canonical in spec.distributions or canonical in spec.editable:
                continue
            if dist.read_text("RECORD") is None:
                continue  # a development checkout: shipped only if imported
            spec.distributions[canonical] = dist.version
            todo.append(canonical)


def _add_module(spec: Spec, name: str, path: str | None) -> None:
    if not name or is_stdlib(name) or name.startswith(SITE_MACHINERY):
        return
    # this side's installation decides (a path measured on a worker means
    # nothing here); the recorded path serves when this process cannot find it
    here = module_file(name)
    if here is not None or path is None or not os.path.exists(path):
        path = here
    if path and (_in_stdlib(path) or _inside_a_package(name, path)):
        return
    dists = providers().get(name, [])
    if dists:
        for dist_name in dists:
            try:
                dist = metadata.distribution(dist_name)
            except metadata.PackageNotFoundError:
                continue
            version = dist.version
            if path and not _ships(dist, path):
                # editable (or a development checkout): ship the imported source tree
                spec.editable[dist.metadata["Name"] or dist_name] = version
                spec.local[name] = _source_root(name, path)
            else:
                spec.distributions[dist.metadata["Name"] or dist_name] = version
        return
    if path is None:
        return  # created at run time (e.g. Cython's runtime modules): nothing to ship
    spec.local[name] = _source_root(name, path)


_stdlib_dirs: tuple[str, ...] | None = None


def _in_stdlib(path: str) -> bool:
    """A file of the standard library's directories (``_sysconfigdata_*``,
    ...), not of a site directory inside them."""
    global _stdlib_dirs
    if _stdlib_dirs is None:
        import sysconfig
        paths = sysconfig.get_paths()
        _stdlib_dirs = tuple({os.path.realpath(paths[k]) + os.sep for k in ("stdlib", "platstdlib")})
    real = os.path.realpath(path)
    return real.startswith(_stdlib_dirs) and not any(
        part in ("site-packages", "dist-packages") for part in real.split(os.sep))


def _inside_a_package(name: str, path: str) -> bool:
    """True for a top-level name whose file sits inside a package directory
    (e.g. pandas' ``_cyutility`` extension registered at the top level): it
    is shipped with that package."""
    base = os.path.basename(path)
    directory = os.path.dirname(os.path.abspath(path))
    if base.startswith("__init__."):
        directory = os.path.dirname(directory)
    return os.path.exists(os.path.join(directory, "__init__.py"))


def _source_root(name: str, path: str) -> str:
    """The package directory of a package's ``__init__``, else the module file."""
    base = os.path.basename(path)
    if base.startswith("__init__."):
        return os.path.dirname(os.path.abspath(path))
    return os.path.abspath(path)


_record_cache: dict[str, set[str]] = {}


def _ships(dist: metadata.Distribution, path: str) -> bool:
    """True when ``path`` is among the files the distribution's ``RECORD`` lists."""
    key = str(getattr(dist, "_path", "")) or dist.metadata["Name"]
    files = _record_cache.get(key)
    if files is None:
        files = set()
        if dist.read_text("RECORD") is not None:
            for f in dist.files or ():
                files.add(os.path.realpath(str(dist.locate_file(f))))
        _record_cache[key] = files
    return os.path.realpath(path) in files


def _add_extra(spec: Spec, entry: str) -> None:
    name, sep, version = entry.partition("==")
    name = name.strip()
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        if name in providers() or module_file(name):
            _add_module(spec, name, None)
            return
        raise ValueError(f"extra_pkgs: {name!r} is not installed in this environment "
                         f"({sys.prefix}); lfm packs installed distributions only") from None
    if sep and version.strip() != dist.version:
        raise ValueError(f"extra_pkgs: {entry!r} asks for version {version.strip()} but "
                         f"{dist.version} is installed; lfm packs the installed one")
    tops = [t for t, ds in providers().items() if name in ds or dist.metadata["Name"] in ds]
    if tops:
        for top in tops:
            if not is_stdlib(top):
                _add_module(spec, top, None)
    else:
        spec.distributions[dist.metadata["Name"] or name] = dist.version


def missing_module(error: BaseException | None) -> str | None:
    """The top-level module an ``ImportError`` (or an lfm error wrapping one,
    e.g. the runner's failure to load a call) could not import, else None."""
    import re
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, ImportError) and getattr(error, "name", None):
            return str(error.name).split(".")[0]
        match = re.search(r"No module named '([^']+)'", str(error))
        if match:
            return match.group(1).split(".")[0]
        error = error.__cause__ or error.__context__
        seen += 1
    return None
