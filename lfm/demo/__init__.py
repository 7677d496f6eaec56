"""The demonstration: a heterogeneous workflow of real Python calls run with
autolabel and with whole-machine labels, compared, and plotted.

``lfm demo`` / ``python -m lfm.demo`` run it (:func:`main`); ``lfm/cli/demo.py``
delegates to :func:`configure` and :func:`run`. Modules:
:mod:`~lfm.demo.workload` (the calls), :mod:`~lfm.demo.runs` (running a policy,
the progress line, the comparison), :mod:`~lfm.demo.plots`, :mod:`~lfm.demo.cli`.
"""
from lfm.demo.cli import configure, main, run

__all__ = ["configure", "main", "run"]
