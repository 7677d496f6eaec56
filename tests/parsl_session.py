"""A DataFlowKernel for one test (needs Parsl): loaded with the given
executors, cleaned up at the end, and checked: no ``work_queue_worker`` of
their managers left."""
from __future__ import annotations

import parsl
import parsl.errors

from test_parsl_wq import wait_until, workers_of


class ParslSession:
    """``with ParslSession(tmp_path, executor, ...):`` Parsl's ``Config`` with
    those executors (run_dir under ``tmp_path``, strategy every 0.5 s)."""

    def __init__(self, tmp_path, *executors, **config):
        self.executors = executors
        self.config = parsl.Config(executors=list(executors), run_dir=str(tmp_path / "runinfo"),
                                   strategy_period=0.5, **config)

    def __enter__(self):
        parsl.load(self.config)
        return self.executors[0]

    def __exit__(self, *exc):
        try:
            parsl.dfk().cleanup()
        except parsl.errors.NoDataFlowKernelError:  # the test cleaned up itself
            pass
        parsl.clear()
        for executor in self.executors:
            port = getattr(executor, "manager_port", None)
            if port:
                assert wait_until(lambda: not workers_of(port), 15), workers_of(port)
