"""What the Parsl tests share: the marks of a module that needs real Work
Queue, waiting for a condition, finding ``work_queue_worker`` processes, and
cleaning up the DataFlowKernel a test loaded."""
from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from lfm.executors import work_queue_available

WQ_AVAILABLE, WQ_WHY = work_queue_available()
#: ``pytestmark`` of a module whose tests need real Work Queue (a skip is a
#: failure under LFM_REQUIRE_WORKQUEUE=1, see conftest.py)
WQ_MARKS = [pytest.mark.workqueue,
            pytest.mark.skipif(not WQ_AVAILABLE, reason=f"real Work Queue is not installed: {WQ_WHY}")]


def wait_until(predicate: Callable[[], object], timeout: float, step: float = 0.2) -> bool:
    """Poll ``predicate`` every ``step`` s for up to ``timeout`` s; its last answer."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def worker_pids(arg: str) -> list[int]:
    """work_queue_worker processes (this machine) with ``arg`` as one of their
    command-line arguments (a manager's port, a project name)."""
    import psutil
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if cmd and cmd[0].endswith("work_queue_worker") and arg in cmd:
            found.append(proc.pid)
    return found


def cleanup_dfk() -> None:
    """Clean up and clear the loaded DataFlowKernel, if a test left one."""
    import parsl
    import parsl.errors
    try:
        parsl.dfk().cleanup()
    except parsl.errors.NoDataFlowKernelError:
        pass
    parsl.clear()


class ParslSession:
    """``with ParslSession(tmp_path, executor, ...):`` a DataFlowKernel for one
    test: Parsl's ``Config`` with those executors (run_dir under ``tmp_path``,
    strategy every 0.5 s), cleaned up at the end, then checked: no
    ``work_queue_worker`` of their managers left."""

    def __init__(self, tmp_path, *executors, **config):
        import parsl
        self.executors = executors
        self.config = parsl.Config(executors=list(executors), run_dir=str(tmp_path / "runinfo"),
                                   strategy_period=0.5, **config)

    def __enter__(self):
        import parsl
        parsl.load(self.config)
        return self.executors[0]

    def __exit__(self, *exc):
        cleanup_dfk()
        for executor in self.executors:
            port = getattr(executor, "manager_port", None)
            if port:
                left = lambda: worker_pids(str(port))  # noqa: E731
                assert wait_until(lambda: not left(), 30), left()
