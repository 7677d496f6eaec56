"""``lfm.parsl.AutolabelExecutor``: lfm's labelling for ``@python_app`` and
``@bash_app`` on the *local* backend (or a Work Queue backend configured the
lfm way). For a drop-in replacement of Parsl's ``WorkQueueExecutor``, with
provider-launched workers and file staging, see :mod:`lfm.parsl.workqueue`.

:class:`AutolabelExecutor` here is a Parsl executor (a
``parsl.executors.base.ParslExecutor``) that hands every app to
:class:`lfm.executors.AutolabelExecutor`, so labelling, exhaustion retries,
stats and the trace are that executor's, on its ``"local"`` or ``"workqueue"``
backend::

    import parsl
    from lfm.parsl import AutolabelExecutor

    parsl.load(parsl.Config(executors=[
        AutolabelExecutor(label="lfm", backend="local", autolabel=True, autocategory=True)]))

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

"""
from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any

from parsl.executors.base import ParslExecutor
from parsl.executors.errors import InvalidResourceSpecification

from lfm.executors import AutolabelExecutor as _LfmExecutor
from lfm.executors.arguments import BACKENDS, check_max_retries, check_predictor, check_resources
from lfm.parsl.common import LfmResults, chain, check_choice, parsl_category, worker_callable
from lfm.parsl.specification import autolabel_specification

__all__ = ["AutolabelExecutor"]


class AutolabelExecutor(LfmResults, ParslExecutor):
    """A Parsl executor that runs apps with labels chosen by an lfm predictor.

    Parameters
    ----------
    label : the executor's Parsl label (apps select it with ``executors=[label]``).
    backend : ``"local"`` (this machine) or ``"workqueue"`` (a real Work Queue
        manager); ``**backend_options`` go to the backend (``capacity=`` for
        local; ``workers=[{"cores", "memory", "disk"}, ...]``, ``port=``,
        ``project_name=`` for Work Queue).
    predictor : a registered predictor name (default ``"auto"``: per category,
        the policy that would have cost least on its history; also
        ``"greedy"``, ``"exhaustive"``, ``"max-seen"``, ...) or a
        ``predictors.base.Predictor`` object.
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

    def __init__(self, label: str = "lfm", backend: Any = "local", predictor: Any = "auto",
                 autolabel: bool = True, autocategory: bool = True,
                 resources: Iterable[str] = ("cores", "memory", "disk"), max_retries: int = 10,
                 trace: Any = None, storage_access: list[Any] | None = None,
                 working_dir: str | None = None, remote_monitoring_radio: Any = None,
                 **backend_options: Any) -> None:
        ParslExecutor.__init__(self)
        if not isinstance(label, str) or not label:
            raise ValueError(f"label must be a non-empty string, got {label!r}")
        check_choice("backend", backend, BACKENDS)
        check_predictor(predictor)
        self.label = label
        self.backend = backend
        self.predictor = predictor
        self.autolabel = bool(autolabel)
        self.autocategory = bool(autocategory)
        self.resources = check_resources(resources)
        self.max_retries = check_max_retries(max_retries)
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
        category, declared = autolabel_specification(resource_specification, self.label)
        if category is None and self.autocategory:
            category = parsl_category(func)
        try:  # the lfm executor's own check of declared resources
            view = executor.options(category=category, resources=declared or None)
        except ValueError as exc:
            raise InvalidResourceSpecification(set(declared), str(exc)) from None
        future: Future = Future()
        future.parsl_executor_task_id = next(self._ids)
        chain(view.submit(worker_callable(func), *args, **kwargs), future)
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

