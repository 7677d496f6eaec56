"""Files of a Parsl app staged as Parsl's ``WorkQueueExecutor`` stages them.

With ``shared_fs=False`` (Parsl's default) an app's files travel as Work Queue
files: ``File`` objects in ``inputs=`` and ``outputs=``, ``File`` positional
and keyword arguments (inputs), and the ``stdout=``/``stderr=`` of bash apps
(outputs, never cached). As in Parsl, a file is staged when it is a local file
(``file`` scheme, or a staging provider gave it an existing ``local_path``) with
a *relative* path: it lands at that relative path in the task's sandbox (the
app's working directory on the worker) and outputs come back to that path
relative to the submitting process's working directory. Absolute paths are
taken to be on a filesystem the workers share, and are not staged.

A relative path that climbs out of the sandbox (``../data/x``) cannot be a
Work Queue name: it is staged under ``lfm-staged/<n>/<name>`` instead and the
app is given a ``File`` whose ``local_path`` is that name (Parsl's own way of
telling an app where a staged file is).

With ``shared_fs=True`` nothing is staged and relative paths are given to the
app as the submitting side's absolute paths (the worker's sandbox is another
directory), as Parsl's map file does.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any

from parsl.data_provider.files import File
from parsl.utils import get_std_fname_mode

#: the runner's own files in every task's sandbox (lfm.executors.workqueue)
RESERVED = ("in.pkl", "out.pkl")


@dataclass
class Staged:
    """An app's call with its files: the arguments the app is given on the
    worker, and Work Queue's ``(local path, name in the sandbox, cache)`` lists."""

    args: tuple
    kwargs: dict
    inputs: list[tuple[str, str, bool]] = field(default_factory=list)
    outputs: list[tuple[str, str, bool]] = field(default_factory=list)


class Stager:
    """Stages the files of each app submitted to one executor.

    shared_fs : stage nothing (see the module docstring).
    use_cache : a file is cached on the workers from its *second* use on (an
        input or output of an earlier app of this executor, by its path), as
        Parsl's Work Queue executor decides: a file used once is not worth a
        worker's cache, and which files recur is only known as apps arrive.
        Work Queue keeps a cached file by name for later tasks, so a file
        changed under the same name is not sent again. ``stdout``/``stderr``
        are never cached.
    """

    def __init__(self, shared_fs: bool = False, use_cache: bool = False) -> None:
        self.shared_fs = bool(shared_fs)
        self.use_cache = bool(use_cache)
        self._escaped = 0
        self._seen: set[str] = set()  # submit-side paths staged so far

    def stage(self, args: tuple, kwargs: dict) -> Staged:
        staged = Staged(tuple(args), dict(kwargs))
        staged.args = tuple(self._file(a, staged.inputs) for a in args)
        for key, value in kwargs.items():
            if key in ("inputs", "outputs") and isinstance(value, (list, tuple)):
                into = staged.inputs if key == "inputs" else staged.outputs
                staged.kwargs[key] = type(value)(self._file(f, into) for f in value)
            elif key in ("stdout", "stderr"):
                if value:
                    staged.kwargs[key] = self._stream(key, value, staged.outputs)
            else:
                staged.kwargs[key] = self._file(value, staged.inputs)
        names = [name for _, name, _ in staged.inputs + staged.outputs]
        clash = sorted(set(names) & set(RESERVED))
        if clash:
            raise ValueError(f"staged file name(s) {clash} are the names lfm's runner uses in each "
                             "task's sandbox; rename the file(s)")
        return staged

    def _file(self, value: Any, into: list) -> Any:
        """``value`` as the app sees it on the worker; a staged File is added to ``into``."""
        if not isinstance(value, File):
            return value
        local = _local_path(value)
        if local is None or os.path.isabs(local):
            return value  # a URL no staging provider fetched, or on a shared filesystem
        if self.shared_fs:
            return _with_path(value, os.path.abspath(local))
        name = self._name(local)
        path = os.path.abspath(local)
        into.append((path, name, self.use_cache and path in self._seen))
        self._seen.add(path)
        return value if name == os.path.normpath(local) else _with_path(value, name)

    def _stream(self, key: str, spec: Any, into: list) -> Any:
        fname, mode = get_std_fname_mode(key, spec)
        fname = os.fspath(fname)
        if os.path.isabs(fname):
            return spec
        if self.shared_fs:
            return (os.path.abspath(fname), mode)
        name = self._name(fname)
        into.append((os.path.abspath(fname), name, False))
        return spec if name == os.path.normpath(fname) else (name, mode)

    def _name(self, local: str) -> str:
        """The name in the sandbox of a relative local path."""
        name = os.path.normpath(local)
        if name == ".." or name.startswith(".." + os.sep):
            self._escaped += 1
            name = f"lfm-staged/{self._escaped}/{os.path.basename(name) or 'file'}"
        return name


def _local_path(f: File) -> str | None:
    """The submit-side path of a File Parsl's Work Queue executor would stage:
    a ``file``-scheme path, or a local copy a staging provider made."""
    if f.scheme == "file":
        return f.filepath
    if f.local_path and os.path.exists(f.local_path):
        return f.local_path
    return None


def _with_path(f: File, path: str) -> File:
    """A copy of ``f`` (never the user's object) that the app finds at ``path``."""
    twin = copy.copy(f)
    twin.local_path = path
    return twin
