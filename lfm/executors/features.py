"""What is known about a call before it runs: its features, from its arguments.

:func:`call_features` gives ``{"input_size": MB}`` for a call, the summed size of

* the existing regular files its arguments name: ``str`` and ``os.PathLike``
  arguments, and objects with a ``filepath`` attribute (Parsl's ``File`` and
  ``DataFuture``, detected by duck typing so this module never imports Parsl),
  also inside Parsl's ``inputs=`` keyword argument and inside lists, tuples,
  sets and dict values (two levels deep, at most :data:`MAX_ITEMS` objects in
  all); each file is counted once, however often it is named; Parsl's
  ``outputs=``, ``stdout=`` and ``stderr=`` keyword arguments are not inputs and
  are left out;
* the in-memory arrays among them: ``nbytes`` of array-likes (numpy, pandas
  Series, torch tensors...), ``len`` of ``bytes``/``bytearray``/``memoryview``.

It is cheap: one ``os.stat`` per candidate path, no file is opened or read, and
a call whose arguments name nothing gets ``{}`` (no ``input_size``). It never
raises: an argument that cannot be inspected is skipped.

A user's own features (``AutolabelExecutor.options(features=...)``: a mapping
name -> number, or a callable of the call's arguments returning one) are merged
over the computed ones and win where names collide. A bad user callable (it
raises, or returns something that is not a mapping of names to finite numbers)
is reported at submission by :class:`FeatureError` naming it and the call.
"""
from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable, Mapping
from numbers import Real
from typing import Any

from lfm.resources import MB
from lfm.trace.schema import ALLOC_PREFIX, COLUMNS

#: At most this many argument objects are inspected per call (containers included).
MAX_ITEMS = 10_000
#: Strings longer than this are not taken as paths (PATH_MAX on Linux).
MAX_PATH = 4096
#: Keyword arguments that name what a call writes, not what it reads (Parsl's).
NOT_INPUTS = frozenset({"outputs", "stdout", "stderr"})
_CONTAINERS = (list, tuple, set, frozenset)
_BYTES = (bytes, bytearray, memoryview)


class FeatureError(ValueError):
    """A user-given ``features=`` callable or mapping is unusable; raised by submit."""


class _Sizer:
    """Accumulates the bytes named by a call's arguments."""

    __slots__ = ("total", "found", "seen_files", "budget")

    def __init__(self) -> None:
        self.total = 0
        self.found = False
        self.seen_files: set[tuple[int, int]] = set()
        self.budget = MAX_ITEMS

    def path(self, text: str) -> None:
        if not text or len(text) > MAX_PATH or "\x00" in text:
            return
        try:
            st = os.stat(text)
        except (OSError, ValueError):
            return
        if not stat.S_ISREG(st.st_mode):
            return
        key = (st.st_dev, st.st_ino)
        self.found = True
        if key not in self.seen_files:
            self.seen_files.add(key)
            self.total += st.st_size

    def add(self, obj: Any, depth: int = 0) -> None:
        if self.budget <= 0:
            return
        self.budget -= 1
        if isinstance(obj, str):
            self.path(obj)
        elif isinstance(obj, _BYTES):
            self.found = True
            self.total += obj.nbytes if isinstance(obj, memoryview) else len(obj)
        elif isinstance(obj, os.PathLike):
            try:
                self.path(os.fspath(obj))
            except Exception:  # a PathLike whose __fspath__ fails (e.g. a Parsl File without local path)
                pass
        elif isinstance(obj, _CONTAINERS):
            if depth < 2:
                for item in obj:
                    if self.budget <= 0:
                        break
                    self.add(item, depth + 1)
        elif isinstance(obj, dict):
            if depth < 2:
                for item in obj.values():
                    if self.budget <= 0:
                        break
                    self.add(item, depth + 1)
        elif isinstance(obj, (int, float, bool, complex)) or obj is None:
            return
        else:
            self._other(obj)

    def _other(self, obj: Any) -> None:
        try:
            filepath = getattr(obj, "filepath", None)
        except Exception:  # Parsl raises when a File has no local path on this side
            filepath = None
        if isinstance(filepath, str):
            self.path(filepath)
            return
        try:
            nbytes = getattr(obj, "nbytes", None)
        except Exception:
            nbytes = None
        try:
            scalar = getattr(obj, "ndim", None) == 0   # a numpy scalar is a number, not an array
        except Exception:
            scalar = False
        if isinstance(nbytes, Real) and not isinstance(nbytes, bool) and nbytes >= 0 and not scalar:
            self.found = True
            self.total += int(nbytes)


def input_size(args: tuple, kwargs: Mapping[str, Any]) -> float | None:
    """MB named by a call's arguments (see the module docstring); None when they name none."""
    sizer = _Sizer()
    try:
        for arg in args:
            sizer.add(arg)
        for key, value in kwargs.items():   # Parsl's inputs=[File, ...] is one of them
            if key not in NOT_INPUTS:
                sizer.add(value)
    except Exception:  # never let an odd argument break a submission
        return None
    return sizer.total / MB if sizer.found else None


def _name(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)


def user_features(given: Mapping[str, float] | Callable[..., Mapping[str, float]] | None,
                  fn: Callable[..., Any], args: tuple, kwargs: Mapping[str, Any]) -> dict[str, float]:
    """The user's ``features=`` for this call as name -> float; FeatureError naming it when unusable."""
    if given is None:
        return {}
    where = f"call of {_name(fn)}"
    if callable(given) and not isinstance(given, Mapping):
        try:
            value = given(*args, **kwargs)
        except Exception as exc:
            raise FeatureError(f"features callable {_name(given)} raised {type(exc).__name__}: {exc} "
                               f"for a {where}") from exc
        source = f"features callable {_name(given)}"
    else:
        value, source = given, "features mapping"
    if not isinstance(value, Mapping):
        raise FeatureError(f"{source} must give a mapping of feature name -> number for a {where}, "
                           f"got {type(value).__name__}")
    out: dict[str, float] = {}
    for key, number in value.items():
        if not isinstance(key, str) or not key:
            raise FeatureError(f"{source} gave a feature name {key!r} for a {where}; names are non-empty strings")
        if isinstance(number, bool) or not isinstance(number, Real) or not math.isfinite(float(number)):
            raise FeatureError(f"{source} gave {key}={number!r} for a {where}; features are finite numbers "
                               f"(input_size in MB)")
        out[key] = float(number)
    return out


def call_features(fn: Callable[..., Any], args: tuple, kwargs: Mapping[str, Any],
                  given: Mapping[str, float] | Callable[..., Mapping[str, float]] | None = None
                  ) -> dict[str, float]:
    """Features of the call ``fn(*args, **kwargs)``: ``input_size`` (MB) when its
    arguments name files or arrays, merged with (and overridden by) the user's
    ``given`` features. Raises only :class:`FeatureError`, for a bad ``given``."""
    out: dict[str, float] = {}
    size = input_size(args, kwargs)
    if size is not None:
        out["input_size"] = size
    out.update(user_features(given, fn, args, kwargs))
    return out


#: Columns the executor writes in every trace row beside the features.
EXECUTOR_COLUMNS = frozenset({"task_id", "attempt", "backend", "host", "exceeded"})


def trace_columns(features: Mapping[str, float], taken: frozenset[str] | set[str] = frozenset()
                  ) -> dict[str, float]:
    """``features`` as extra trace columns: a name that is a schema column, an
    ``alloc_*`` name, one of :data:`EXECUTOR_COLUMNS` or in ``taken`` gets a
    ``feature_`` prefix so the row stays valid (``input_size`` keeps its name)."""
    out = {}
    for key, value in features.items():
        clash = key in COLUMNS or key.startswith(ALLOC_PREFIX) or key in EXECUTOR_COLUMNS or key in taken
        out[f"feature_{key}" if clash else key] = value
    return out
