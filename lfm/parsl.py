"""Parsl integration: lfm's labelling for ``@python_app`` and ``@bash_app``.

:class:`AutolabelExecutor` here is a Parsl executor (a
``parsl.executors.base.ParslExecutor``) that hands every app to
:class:`lfm.executors.AutolabelExecutor`, so labelling, exhaustion retries,
stats and the trace are that executor's, on its ``"local"`` or ``"workqueue"``
backend::

    import parsl
    from lfm.parsl import AutolabelExecutor

    parsl.load(parsl.Config(executors=[
        AutolabelExecutor(label="lfm", backend="local", predictor="greedy",
                          autolabel=True, autocategory=True)]))

What Parsl users should know:

* ``parsl_resource_specification`` accepts ``cores``, ``memory`` (MB) and
  ``disk`` (MB), in the units of Parsl's Work Queue executor, and ``category``;
  any other key (``gpus``, ``priority``, ...) is an
  ``InvalidResourceSpecification`` listing the accepted ones. Declared
  resources are first guesses with ``autolabel=True`` (an exhaustion still
  retries with a larger label) and hard limits with ``autolabel=False``; a
  resource not declared is labelled as :class:`lfm.executors.AutolabelExecutor`
  does (Parsl's rule "all of cores, memory, disk or none" does not apply).
* Category: ``category`` from the specification, else the app's name
  (``autocategory=True``), else one category for every app.
* An app runs in lfm's isolated monitored process, so its whole process tree
  is measured with exact peaks (children and grandchildren count, as with
  ``lfm run``). A ``@bash_app`` is measured like ``lfm run``: only the
  command's processes count, not the Python process that runs Parsl's bash
  wrapper (``run_call(..., include_root=False)``); its label is enforced on
  the same figures.
* An app that raises fails its ``AppFuture`` with its exception, and the
  attempt is recorded with status ``error`` (not learnt from); Parsl's own
  ``Config(retries=...)`` re-submits it. Exceeding a label is not a Parsl
  failure: the call is retried inside lfm with a larger label (see
  :meth:`AutolabelExecutor.stats` and the trace), and only when no larger label
  exists does the ``AppFuture`` fail with :class:`lfm.ResourceExhaustion`.
* Parsl's per-task resource monitoring is off for this executor
  (``monitor_resources()`` is False): lfm measures the app itself, and Parsl's
  monitoring process would otherwise be charged to the app.

Needs Parsl: ``pip install 'lfm[parsl]'``. ``import lfm`` never imports Parsl.
"""
from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

try:
    from parsl.app.errors import RemoteExceptionWrapper
    from parsl.executors.base import ParslExecutor
    from parsl.executors.errors import InvalidResourceSpecification
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(f"lfm.parsl needs Parsl, which could not be imported ({exc}); "
                      "install it with: pip install 'lfm[parsl]'") from exc

from lfm.executors import AutolabelExecutor as _LfmExecutor
from lfm.executors.executor import BACKENDS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AutolabelExecutor", "ACCEPTED_SPECIFICATION", "parsl_category"]

#: Keys ``parsl_resource_specification`` may hold: resources in lfm's units
#: (cores a float, memory and disk in MB) and the task's category.
ACCEPTED_SPECIFICATION = ("cores", "memory", "disk", "category")

#: ``trace=True`` writes the trace here, under the DataFlowKernel's run_dir.
TRACE_NAME = "lfm-{label}.trace.jsonl"


class AutolabelExecutor(ParslExecutor):
    """A Parsl executor that runs apps with labels chosen by an lfm predictor.

    Parameters
    ----------
    label : the executor's Parsl label (apps select it with ``executors=[label]``).
    backend : ``"local"`` (this machine) or ``"workqueue"`` (a real Work Queue
        manager); ``**backend_options`` go to the backend (``capacity=`` for
        local; ``workers=[{"cores", "memory", "disk"}, ...]``, ``port=``,
        ``project_name=`` for Work Queue).
    predictor : a registered predictor name (``"greedy"``, ``"exhaustive"``,
        ``"max-seen"``, ...) or a ``predictors.base.Predictor`` object.
    autolabel, autocategory, resources, max_retries : as in
        :class:`lfm.executors.AutolabelExecutor` (``max_retries`` counts lfm's
        exhaustion retries, independent of Parsl's ``Config(retries=...)``).
    trace : None, ``True`` (``lfm-<label>.trace.jsonl`` in the DataFlowKernel's
        run_dir), a path, or an object with ``append(row)``: one row per attempt.
    storage_access, working_dir, remote_monitoring_radio : as for Parsl's
        executors. Files given as app ``inputs``/``outputs``/``stdout`` are not
        staged: with Work Queue workers they must be on a shared filesystem
        (absolute paths).

    The lfm executor is created by ``start()`` (when Parsl loads the config)
    and available as :attr:`lfm_executor`.
    """

    def __init__(self, label: str = "lfm", backend: Any = "local", predictor: Any = "greedy",
                 autolabel: bool = True, autocategory: bool = True,
                 resources: Iterable[str] = ("cores", "memory", "disk"), max_retries: int = 10,
                 trace: Any = None, storage_access: list[Any] | None = None,
                 working_dir: str | None = None, remote_monitoring_radio: Any = None,
                 **backend_options: Any) -> None:
        ParslExecutor.__init__(self)
        if not isinstance(label, str) or not label:
            raise ValueError(f"label must be a non-empty string, got {label!r}")
        _check_choice("backend", backend, BACKENDS)
        if isinstance(predictor, str):
            import predictors
            _check_choice("predictor", predictor, tuple(predictors.available()))
        self.label = label
        self.backend = backend
        self.predictor = predictor
        self.autolabel = bool(autolabel)
        self.autocategory = bool(autocategory)
        self.resources = tuple(resources)
        self.max_retries = int(max_retries)
        self.trace = trace
        self.backend_options = dict(backend_options)
        self.storage_access = storage_access
        self.working_dir = working_dir
        if remote_monitoring_radio is None:
            from parsl.monitoring.radios.filesystem import FilesystemRadio
            remote_monitoring_radio = FilesystemRadio()
        self.remote_monitoring_radio = remote_monitoring_radio
        self.lfm_executor: _LfmExecutor | None = None
        self._sink: Any = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.backend_options.items())
        return (f"{type(self).__name__}(label={self.label!r}, backend={self.backend!r}, "
                f"predictor={self.predictor!r}, autolabel={self.autolabel}, "
                f"autocategory={self.autocategory}{options})")

    # ---- ParslExecutor -----------------------------------------------------------------
    def start(self) -> None:
        """Create the lfm executor and its backend (Parsl calls this on load)."""
        with self._lock:
            if self.lfm_executor is not None:
                return
            self.lfm_executor = _LfmExecutor(
                backend=self.backend, predictor=self.predictor, autolabel=self.autolabel,
                autocategory=self.autocategory, resources=self.resources,
                max_retries=self.max_retries, trace=self._trace_sink(), **self.backend_options)

    def submit(self, func: Callable[..., Any], resource_specification: Mapping[str, Any] | None,
               *args: Any, **kwargs: Any) -> Future:
        """Run one try of an app; a Future of its result (Parsl's DataFlowKernel
        calls this). Raises ``InvalidResourceSpecification`` for a bad
        ``parsl_resource_specification``."""
        executor = self.lfm_executor
        if executor is None:
            raise RuntimeError(f"Parsl executor {self.label!r} was not started: load it with "
                               "parsl.load(Config(executors=[...]))")
        category, declared = self._specification(resource_specification)
        if category is None and self.autocategory:
            category = parsl_category(func)
        try:  # the lfm executor's own check of declared resources
            view = executor.options(category=category, resources=declared or None)
        except ValueError as exc:
            raise InvalidResourceSpecification(set(declared), str(exc)) from None
        future = view.submit(_RaiseAppErrors(func), *args, **kwargs)
        future.parsl_executor_task_id = next(self._ids)
        return future

    def shutdown(self) -> None:
        """Wait for submitted apps, then stop the backend (workers, processes)."""
        with self._lock:
            executor = self.lfm_executor
        if executor is not None:
            executor.shutdown(wait=True)
        super().shutdown()

    def monitor_resources(self) -> bool:
        """False: lfm measures each app itself (Parsl's per-task monitoring
        process would be charged to the app's process tree)."""
        return False

    # ---- lfm ---------------------------------------------------------------------------
    def stats(self) -> "pd.DataFrame":
        """Per category: tasks, attempts, retries, allocated vs used, efficiency
        (see :meth:`lfm.executors.AutolabelExecutor.stats`)."""
        if self.lfm_executor is None:
            raise RuntimeError(f"Parsl executor {self.label!r} was not started")
        return self.lfm_executor.stats()

    @property
    def trace_path(self) -> str | None:
        """Where the trace is written, when it is a file."""
        sink = self._sink
        if sink is None or callable(getattr(sink, "append", None)):
            return getattr(sink, "path", None)
        return os.fspath(sink)

    def _trace_sink(self) -> Any:
        if self.trace is True:
            os.makedirs(self.run_dir, exist_ok=True)
            self._sink = os.path.join(self.run_dir, TRACE_NAME.format(label=self.label))
        else:
            self._sink = None if self.trace is False else self.trace
        return self._sink

    def _specification(self, spec: Mapping[str, Any] | None) -> tuple[str | None, dict[str, Any]]:
        """(category or None, declared resources) from a resource specification
        (keys checked here, values by the lfm executor)."""
        if not spec:
            return None, {}
        if not isinstance(spec, Mapping):
            raise InvalidResourceSpecification(
                set(), f"parsl_resource_specification must be a dict, got {type(spec).__name__}")
        unknown = set(spec) - set(ACCEPTED_SPECIFICATION)
        if unknown:
            raise InvalidResourceSpecification(
                unknown, f"executor {self.label!r} accepts only these keys: "
                f"{', '.join(ACCEPTED_SPECIFICATION)} (memory and disk in MB)")
        category = spec.get("category")
        if category is not None and (not isinstance(category, str) or not category):
            raise InvalidResourceSpecification(
                {"category"}, f"category must be a non-empty string, got {category!r}")
        return category, {k: v for k, v in spec.items() if k != "category"}


def parsl_category(func: Callable[..., Any]) -> str:
    """The category of an app's function as Parsl's Work Queue executor names
    it with ``autocategory=True``: the app's name (``__name__``; Parsl's
    wrappers of python and bash apps keep it)."""
    return getattr(func, "__name__", None) or type(func).__name__


class _RaiseAppErrors:
    """Runs a Parsl-wrapped app and raises the app's exception instead of
    returning it in Parsl's ``RemoteExceptionWrapper``, so that lfm records a
    failed app as an ``error`` attempt (not learnt from) while the ``AppFuture``
    still fails with the app's own exception."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.__name__ = parsl_category(func)
        self.__qualname__ = self.__name__
        #: a bash app is measured like ``lfm run``: only the command's processes,
        #: not the Python process running Parsl's bash wrapper (see run_call)
        self.lfm_include_root = not _is_bash_app(func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.func(*args, **kwargs)
        if isinstance(result, RemoteExceptionWrapper):
            result.reraise()
        return result


def _is_bash_app(func: Callable[..., Any]) -> bool:
    """True for the function Parsl submits for a ``@bash_app``: its error
    wrapper around ``partial(remote_side_bash_executor, app)``."""
    from parsl.app.bash import remote_side_bash_executor
    inner = getattr(func, "__wrapped__", func)
    return getattr(inner, "func", inner) is remote_side_bash_executor


def _check_choice(what: str, value: Any, known: tuple[str, ...]) -> None:
    if isinstance(value, str) and value not in known:
        raise ValueError(f"unknown {what} {value!r}; known: {', '.join(known)}")
