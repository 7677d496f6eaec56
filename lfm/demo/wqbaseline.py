"""Raw Work Queue as its users configure it: the baseline rows of the demo and
of ``benchmarks/bench_executor.py``.

:class:`RawWorkQueue` is a real Work Queue manager with local
``work_queue_worker`` processes, running each call as a ``python -c`` task (no
lfm on the task's path). Its ``mode`` is how the queue labels tasks:

``"parsl-autolabel"``
    exactly what Parsl's ``WorkQueueExecutor(autolabel=True,
    autocategory=True)`` does to its queue: ``enable_monitoring()``,
    ``tune("category-steady-n-tasks", autolabel_window)`` with Parsl's default
    window of 1, every category in ``MAX_THROUGHPUT`` mode, and
    ``specify_max_retries(1)`` (Parsl's default ``max_retries``) on each task,
    which carries no resource label.
``"cctools-autolabel"``
    the same allocation mode with cctools' own defaults (no ``tune``, no
    retry limit).
``"whole"``
    no label and no monitoring: a task takes a whole worker (Parsl's
    ``autolabel=False`` without a resource specification).

Allocations are what Work Queue really granted (``resources_allocated``:
whole cores, MB). Work Queue retries an exhausted task inside the manager, so
the caller sees only the final attempt and its count of exhausted attempts.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

MODES = ("parsl-autolabel", "cctools-autolabel", "whole")
#: Parsl's ``WorkQueueExecutor`` defaults for ``autolabel_window`` and ``max_retries``.
PARSL_AUTOLABEL_WINDOW = 1
PARSL_MAX_RETRIES = 1


class RawWorkQueue:
    """A raw Work Queue manager with local workers of ``workers`` sizes (dicts
    of cores, memory MB, disk MB), labelling tasks by ``mode`` (see the module
    docstring). Like every manager lfm starts, it requires a password: a
    random one made for it (:mod:`lfm.executors.wqauth`), given to its
    workers and removed by :meth:`close`."""

    def __init__(self, workers: Iterable[Mapping[str, float]], mode: str = "whole") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        from lfm.executors.wqauth import new_password_file, worker_argv
        from lfm.executors.wqimport import load_work_queue
        self.wq = load_work_queue()
        self.mode = mode
        self.root = tempfile.mkdtemp(prefix="lfm-raw-wq-")
        self.password = new_password_file(self.root)
        self.queue = self.wq.WorkQueue(port=0)
        self.queue.specify_password_file(self.password.path)
        if mode != "whole":
            self.queue.enable_monitoring()
        if mode == "parsl-autolabel":
            self.queue.tune("category-steady-n-tasks", PARSL_AUTOLABEL_WINDOW)
        self._categories: set[str] = set()
        self.workers = [subprocess.Popen(
            worker_argv(["localhost", str(self.queue.port)], w,
                        workdir=tempfile.mkdtemp(dir=self.root), options=["--parent-death"],
                        password_file=self.password.path),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            for w in workers]
        self.path = os.pathsep.join([os.getcwd(), *(p for p in sys.path if p and os.path.exists(p))])

    def task(self, code: str, category: str, python: str = sys.executable,
             no_site: bool = False) -> Any:
        """A task running ``python -c code`` in ``category``, labelled by the
        mode. ``no_site``: start the interpreter as lfm's runner starts on
        local workers (``python -S``, the paths ``site`` would add given in
        ``PYTHONPATH``; see :mod:`lfm.executors.pystart`)."""
        path = self.path
        flags = ""
        if no_site:
            from lfm.executors.pystart import site_free_paths
            extra = site_free_paths()
            if extra is None:
                raise RuntimeError("this interpreter's site does more than add paths: "
                                   "it cannot start without it (see lfm.executors.pystart)")
            path = os.pathsep.join([path, *extra])
            flags = "-S "
        task = self.wq.Task(f"{shlex.quote(python)} {flags}-c {shlex.quote(code)}")
        task.specify_category(category)
        if self.mode != "whole" and category not in self._categories:
            self.queue.specify_category_mode(category, self.wq.WORK_QUEUE_ALLOCATION_MODE_MAX_THROUGHPUT)
            self._categories.add(category)
        if self.mode == "parsl-autolabel":
            task.specify_max_retries(PARSL_MAX_RETRIES)
        task.specify_environment_variable("PYTHONPATH", path)
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):
            # as lfm's backend does for its local workers: without it every
            # task would compile its modules from source again
            task.specify_environment_variable("PYTHONPYCACHEPREFIX", os.path.join(self.root, "pycache"))
            task.specify_environment_variable("PYTHONDONTWRITEBYTECODE", "")
        return task

    def run(self, tasks: list, collect: Callable[[Any], None] | None = None,
            timeout: float = 3600.0) -> tuple[float, list]:
        """Submit ``tasks`` and wait for all of them (``collect(task)`` on each
        as it returns); the elapsed seconds and the finished tasks. Raises
        ``TimeoutError`` after ``timeout`` seconds."""
        started = time.time()
        for t in tasks:
            self.queue.submit(t)
        done = []
        while len(done) < len(tasks):
            if time.time() - started > timeout:
                raise TimeoutError(f"raw Work Queue: {len(tasks) - len(done)} of {len(tasks)} tasks "
                                   f"unfinished after {timeout:g} s")
            t = self.queue.wait(5)
            if t is not None:
                if collect is not None:
                    collect(t)
                done.append(t)
        return time.time() - started, done

    def close(self) -> None:
        """Stop the workers (and the tasks they run) and remove their directories."""
        from lfm.executors.wqlocal import stop_process_group
        for worker in self.workers:
            worker.lfm_workdir = self.root
            stop_process_group(worker)
        self.workers = []
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "RawWorkQueue":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def granted(task: Any) -> dict[str, float]:
    """What Work Queue granted ``task`` (cores, memory MB, disk MB), from
    ``resources_allocated``; empty when the binding does not say."""
    allocated = getattr(task, "resources_allocated", None)
    out = {}
    for r in ("cores", "memory", "disk"):
        value = getattr(allocated, r, None) if allocated is not None else None
        if value is not None and float(value) > 0:
            out[r] = float(value)
    return out


def wall_time(task: Any) -> float:
    """Seconds the task's command ran on its worker."""
    start, finish = getattr(task, "execute_cmd_start", 0), getattr(task, "execute_cmd_finish", 0)
    return max(0.0, (finish - start) / 1e6) if start and finish else 0.0


def exhausted_attempts(task: Any) -> int:
    """Attempts of ``task`` that Work Queue killed for exceeding their allocation."""
    try:
        return max(0, int(getattr(task, "exhausted_attempts", 0) or 0))
    except Exception:  # the Debian binding names attributes its library may lack
        return 0
