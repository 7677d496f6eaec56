"""Parsl integration: lfm's labelling for ``@python_app`` and ``@bash_app``.

Two Parsl executors:

* :class:`WorkQueueExecutor` (:mod:`lfm.parsl.workqueue`) is a drop-in for
  ``parsl.executors.WorkQueueExecutor``: the same parameters with Parsl's
  defaults and meaning, workers launched in blocks by any Parsl provider
  (``LocalProvider``, ``SlurmProvider``, ...) and scaled by Parsl's strategy,
  files staged to workers that share no filesystem, and lfm's predictors
  choosing the labels (``autolabel=True``), plus ``predictor=`` and ``trace=``.
  Changing the import is all an existing configuration needs::

      from lfm.parsl import WorkQueueExecutor   # was: from parsl.executors import ...

* :class:`AutolabelExecutor` (:mod:`lfm.parsl.autolabel`) runs apps on lfm's
  *local* backend (this machine, packed by labels), or on a Work Queue backend
  configured the lfm way (``backend="workqueue", workers=[...]``); it launches
  no provider blocks and stages no files.

Needs Parsl: ``pip install 'lfm[parsl]'``. ``import lfm`` never imports Parsl.
"""
from __future__ import annotations

try:
    import parsl.executors.status_handling  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(f"lfm.parsl needs Parsl, which could not be imported ({exc}); "
                      "install it with: pip install 'lfm[parsl]'") from exc

from lfm.parsl.autolabel import AutolabelExecutor
from lfm.parsl.common import parsl_category
from lfm.parsl.specification import ACCEPTED_SPECIFICATION, WORK_QUEUE_SPECIFICATION
from lfm.parsl.workqueue import WorkQueueExecutor

__all__ = ["ACCEPTED_SPECIFICATION", "AutolabelExecutor", "WORK_QUEUE_SPECIFICATION",
           "WorkQueueExecutor", "parsl_category"]
