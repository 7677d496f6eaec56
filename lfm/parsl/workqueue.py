"""``lfm.parsl.WorkQueueExecutor``: a drop-in for ``parsl.executors.WorkQueueExecutor``.

A Parsl ``BlockProviderExecutor`` on lfm's Work Queue backend: the provider
(``LocalProvider`` by default, ``SlurmProvider``, ...) launches blocks of
``work_queue_worker`` processes that connect to lfm's manager, Parsl's scaling
strategy scales them out and in (``init_blocks``, ``min_blocks``,
``max_blocks``, ``parallelism``, idle blocks after ``Config(max_idletime=)``),
failed blocks are reported and handled by Parsl's block error handler, and
every app runs as a Work Queue task under lfm's monitor, labelled by lfm's
predictor (``autolabel=True``) or with its declared resources / a whole worker
(``autolabel=False``, Parsl's default). Files are staged as Parsl stages them
(:mod:`lfm.parsl.staging`). See the README section "Moving from Parsl's
WorkQueueExecutor" for every parameter's state.
"""
from __future__ import annotations

import itertools
import logging
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from parsl.executors.errors import InvalidResourceSpecification
from parsl.executors.status_handling import BlockProviderExecutor
from parsl.executors.workqueue.errors import WorkQueueFailure

from lfm.checks import positive
from lfm.executors.arguments import check_predictor
from lfm.executors.calls import check_env
from lfm.executors.wqauth import check_max_output_mb, check_password_choice
from lfm.pack.wq import check_pack_options
from lfm.parsl.blocks import GRACE, ReapingBlocks
from lfm.parsl.common import LfmResults, chain, parsl_category, worker_callable
from lfm.parsl.specification import LABELLED, work_queue_specification
from lfm.parsl.staging import Stager
from lfm.parsl.window import CategoryWindow
from lfm.parsl.wqoptions import check_source

log = logging.getLogger(__name__)

#: Work Queue's default port, Parsl's default ``port`` for this executor.
WORK_QUEUE_DEFAULT_PORT = 9123

#: Category of every app with ``autocategory=False`` (Parsl's name for it).
DEFAULT_CATEGORY = "parsl-default"


class WorkQueueExecutor(LfmResults, ReapingBlocks, BlockProviderExecutor):
    """Parsl's ``WorkQueueExecutor`` parameters, defaults and meaning (see
    Parsl's documentation), on lfm's Work Queue backend.

    Differences, all stated at construction when they matter: ``coprocess=True``
    is refused (Debian's ``work_queue_worker`` has no ``--coprocess``, and lfm
    runs each app in its own monitored process); ``source=True`` is refused
    (lfm ships every app with cloudpickle, it has no source mode);
    ``autolabel=True`` means lfm's predictor chooses the labels; with it,
    ``autolabel_window=N``: while a category has fewer than N successful
    tasks, at most N of its tasks without declared resources are in flight,
    the others wait to be labelled from what those used (:mod:`lfm.parsl.window`).
    Blocks of a ``LocalProvider`` whose processes survive the provider's
    SIGTERM are SIGKILLed 3 s later (:mod:`lfm.parsl.blocks`).

    ``pack=True`` ships each app's environment as Parsl's does, but measured
    and without conda (:mod:`lfm.pack`): per category, the distributions and
    local sources its apps imported (before the first ran, a static scan of
    the app's module), plus ``extra_pkgs`` (installed distributions), packed
    once, sent once per worker and unpacked there once; Parsl comes too (the
    worker runs Parsl's app wrapper). Workers need only ``python3`` of this
    minor version on their PATH (the provider's ``worker_init`` can set it),
    or nothing with ``include_python=True``. ``extra_pkgs`` without ``pack``
    has no effect, as in Parsl (lfm warns).

    lfm's own keyword-only options:

    predictor : a registered predictor name or a ``predictors.base.Predictor``
        (default ``"auto"``: per category, the policy that would have cost
        least on its history); used with ``autolabel=True``.
    trace : None, ``True`` (``lfm-<label>.trace.jsonl`` in the run_dir), a path
        or an object with ``append(row)``: one row per attempt, measured.
    scaling_assume_core_slots_per_worker : another Parsl release's name of
        ``scaling_cores_per_worker``.
    password : True (default): workers must present ``project_password_file``
        or else a random password made for this run (0600, removed at
        shutdown; provider blocks get it). False: an open manager, which any
        host reaching the port can use to run code here (warned; README
        "Security").
    max_output_mb : the largest result file accepted from a worker, MB (default
        twice the memory label + 256 MB, else 8192; ``math.inf``: no limit).
    include_python : with ``pack=True``, pack this interpreter too.

    Retries: ``max_retries`` is Work Queue's (a task whose worker was lost runs
    again elsewhere, up to that many times; None: forever), per attempt. An app
    that outgrows its label (``autolabel=True``) is retried by lfm with a larger
    label, as a new Work Queue task, up to 10 times; only then, or when Work
    Queue gives up, does the app fail, and Parsl's ``Config(retries=)`` may run
    it again from scratch.
    """

    def __init__(self, label: str = "WorkQueueExecutor", provider: Any = None,
                 working_dir: str = ".", project_name: str | None = None,
                 project_password_file: str | None = None, address: str | None = None,
                 port: int = WORK_QUEUE_DEFAULT_PORT, env: dict | None = None,
                 shared_fs: bool = False, storage_access: list | None = None,
                 use_cache: bool = False, source: bool = False, pack: bool = False,
                 extra_pkgs: list[str] | None = None, autolabel: bool = False,
                 autolabel_window: int = 1, autocategory: bool = True,
                 max_retries: int | None = 1, init_command: str = "", worker_options: str = "",
                 full_debug: bool = True, worker_executable: str = "work_queue_worker",
                 function_dir: str | None = None, coprocess: bool = False,
                 scaling_cores_per_worker: int = 1, remote_monitoring_radio: Any = None, *,
                 scaling_assume_core_slots_per_worker: int | None = None,
                 predictor: Any = "auto", trace: Any = None, password: bool = True,
                 max_output_mb: float | None = None, include_python: bool = False) -> None:
        if provider is None:
            from parsl.providers import LocalProvider
            provider = LocalProvider()
        BlockProviderExecutor.__init__(self, provider=provider, block_error_handler=True)
        ReapingBlocks.__init__(self)
        from lfm.executors.wqimport import load_work_queue
        load_work_queue()  # no Work Queue: fail now, with the install hint (Parsl does too)
        _refuse_unsupported(coprocess=coprocess)
        check_pack_options(pack, extra_pkgs, include_python, ignore_extra=True)
        check_password_choice(password, project_password_file, "project_password_file")
        if not isinstance(label, str) or not label:
            raise ValueError(f"label must be a non-empty string, got {label!r}")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer in 0..65535 (0: any free port), got {port!r}")
        if max_retries is not None and (not isinstance(max_retries, int) or max_retries < 0):
            raise ValueError(f"max_retries must be None or an integer >= 0, got {max_retries!r}")
        if scaling_assume_core_slots_per_worker is not None:
            scaling_cores_per_worker = scaling_assume_core_slots_per_worker
        positive(scaling_cores_per_worker, "scaling_cores_per_worker", unit="cores")
        if project_password_file is not None and not os.path.exists(project_password_file):
            raise WorkQueueFailure(f"Could not find password file: {project_password_file}")
        for name, text in (("init_command", init_command), ("worker_options", worker_options)):
            if not isinstance(text, str):
                raise ValueError(f"{name} must be a string (shell words), got {text!r}")
        self.label = label
        self.working_dir = working_dir
        self.project_name = project_name
        self.project_password_file = project_password_file
        self.address = address or socket.gethostname()
        self.port = port
        self.env = check_env(env)
        self.shared_fs = bool(shared_fs)
        self.storage_access = storage_access
        self.use_cache = bool(use_cache)
        self.source = True if pack else bool(source)
        self.pack = pack
        self.extra_pkgs = list(extra_pkgs or [])
        self.autolabel = bool(autolabel)
        self.autolabel_window = autolabel_window
        self.autocategory = bool(autocategory)
        self.max_retries = max_retries
        self.init_command = init_command
        self.worker_options = worker_options
        self.full_debug = bool(full_debug)
        self.worker_executable = worker_executable
        self.function_dir = function_dir
        self.coprocess = coprocess
        self.scaling_cores_per_worker = scaling_cores_per_worker
        if remote_monitoring_radio is None:
            from parsl.monitoring.radios.filesystem import FilesystemRadio
            remote_monitoring_radio = FilesystemRadio()
        self.remote_monitoring_radio = remote_monitoring_radio
        check_source(source, pack)
        self.predictor = check_predictor("auto" if predictor is None else predictor)
        self._window = CategoryWindow(autolabel_window)
        self.trace = trace
        self.password = password
        self.max_output_mb = check_max_output_mb(max_output_mb)
        self.include_python = bool(include_python)
        self.lfm_executor: Any = None
        self.worker_command = ""
        self._chosen_port: int | None = None
        self._stager = Stager(shared_fs=self.shared_fs, use_cache=self.use_cache)
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._sink: Any = None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(label={self.label!r}, provider={self.provider!r}, "
                f"port={self.port}, project_name={self.project_name!r}, "
                f"shared_fs={self.shared_fs}, autolabel={self.autolabel}, "
                f"autocategory={self.autocategory}, predictor={self.predictor!r})")

    # ---- ParslExecutor -----------------------------------------------------------------
    def start(self) -> None:
        """Start lfm's Work Queue manager (and executor); Parsl's scaling then
        launches the blocks (called by Parsl when the config is loaded)."""
        super().start()
        from lfm.executors import AutolabelExecutor as LfmExecutor
        from lfm.executors.workqueue import WorkQueueBackend

        log_dir = os.path.join(self.run_dir, self.label)
        if self.function_dir:
            data_dir = os.path.join(self.function_dir, str(time.time()), self.label, "function_data")
        else:
            data_dir = os.path.join(log_dir, "function_data")
        os.makedirs(data_dir, exist_ok=True)
        options: dict[str, Any] = {
            # packed: the workers' python3, as Parsl's launch command runs it
            "port": self.port, "project_name": self.project_name,
            "python": "python3" if self.pack else sys.executable,
            "password": self.password, "max_output_mb": self.max_output_mb,
            "env": self._task_env(), "task_retries": self.max_retries or 0, "verbose": False,
            "staging_dir": data_dir,
            "debug_log": os.path.join(log_dir, "debug_log") if self.full_debug else None}
        if self.project_password_file:
            options["password_file"] = self.project_password_file
        if self.init_command:
            options["init_command"] = self.init_command
        if self.pack:
            options.update(pack=True, extra_pkgs=self.extra_pkgs, include_python=self.include_python)
        backend = WorkQueueBackend(**options)
        self.lfm_executor = LfmExecutor(
            backend=backend, predictor=self.predictor, autolabel=self.autolabel,
            autocategory=True, resources=LABELLED,
            trace=self._trace_sink())
        try:
            self._chosen_port = backend.port
            self.worker_command = self._construct_worker_command()
            self._patch_providers()
        except BaseException:
            # Parsl does not shut down an executor whose start failed: the manager
            # would keep the port, and the next parsl.load() could not start
            self.lfm_executor.kill()
            self.lfm_executor = None
            raise
        log.info("lfm WorkQueueExecutor %s: manager on port %s; workers: %s", self.label,
                 self._chosen_port, self.worker_command)

    def submit(self, func: Callable[..., Any], resource_specification: Mapping[str, Any] | None,
               *args: Any, **kwargs: Any) -> Future:
        """Run one try of an app as a Work Queue task; a Future of its result."""
        if self.bad_state_is_set:
            raise self.executor_exception
        executor = self.lfm_executor
        if executor is None:
            raise RuntimeError(f"Parsl executor {self.label!r} was not started: load it with "
                               "parsl.load(Config(executors=[...]))")
        category, declared, extra = work_queue_specification(resource_specification, self.autolabel)
        spec = dict(resource_specification or {})
        if category is None:
            category = parsl_category(func) if self.autocategory else DEFAULT_CATEGORY
        staged = self._stager.stage(args, kwargs)
        try:
            view = executor.options(category=category, resources=declared or None,
                                    inputs=staged.inputs, outputs=staged.outputs, extra=extra)
        except ValueError as exc:  # lfm's own check of the declared values
            raise InvalidResourceSpecification(set(declared), str(exc)) from None
        future: Future = Future()
        future.parsl_executor_task_id = task_id = next(self._ids)
        future.resource_specification = spec
        with self._lock:
            self._tasks[task_id] = future
        app = worker_callable(func)
        if not self.autolabel or declared:
            chain(view.submit(app, *staged.args, **staged.kwargs), future,
                  on_done=lambda: self._forget(task_id))
            return future

        def start() -> Future:
            try:
                inner = view.submit(app, *staged.args, **staged.kwargs)
            except Exception as exc:  # e.g. shut down while it waited in the window
                inner = Future()
                inner.set_exception(exc)
            chain(inner, future, on_done=lambda: self._forget(task_id))
            return inner
        self._window.submit(category, start)
        return future

    def outstanding(self) -> int:
        """Core slots Parsl's strategy sees as needed: per unfinished app its
        declared ``cores``, else ``scaling_cores_per_worker`` (an app without
        cores takes a whole worker), as Parsl's Work Queue executor counts."""
        with self._lock:
            futures = list(self._tasks.values())
        return sum(getattr(f, "resource_specification", {}).get("cores", self.scaling_cores_per_worker)
                   for f in futures if not f.done())

    @property
    def workers_per_node(self) -> int | float:
        return self.scaling_cores_per_worker

    def _get_launch_command(self, block_id: str) -> str:
        return f"PARSL_WORKER_BLOCK_ID={block_id} {self.worker_command}"

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        """Stop lfm's manager (apps still outstanding fail) and cancel every
        block not already ended or scaled in (the DataFlowKernel's cleanup
        scales in first, except when the executor is in a bad state)."""
        self._window.drop()  # apps still waiting in a category's window: failed below
        executor = self.lfm_executor
        if executor is not None:
            executor.kill()
        with self._lock:
            left = [f for f in self._tasks.values() if not f.done()]
        for future in left:
            future.set_exception(WorkQueueFailure("work queue executor failed to execute the task."))
        self._cancel_blocks()
        self._reaper.join(GRACE + 10)
        super().shutdown()

    def monitor_resources(self) -> bool:
        """False: lfm measures each app itself."""
        return False

    @property
    def manager_port(self) -> int | None:
        """The port lfm's Work Queue manager listens on (``port=0``: the one chosen)."""
        return self._chosen_port

    # ---- internals ---------------------------------------------------------------------
    def _construct_worker_command(self) -> str:
        """``work_queue_worker`` with Parsl's options, in Parsl's order."""
        parts = [self.worker_executable]
        password = self._password_file()
        if password:
            # a staging provider puts the file in the job's own directory
            parts += ["--password",
                      os.path.basename(password) if self._stages_files() else password]
        if self.worker_options:
            parts.append(self.worker_options)
        if self.project_name:
            parts += ["-M", self.project_name]
        else:
            parts += [self.address, str(self._chosen_port)]
        return " ".join(parts)

    def _password_file(self) -> str | None:
        """The manager's password file: the user's, or the one lfm made (None: open)."""
        backend = getattr(self.lfm_executor, "backend", None)
        return self.project_password_file or getattr(backend, "password_file", None)

    def _stages_files(self) -> bool:
        """Whether the provider copies files into each job's own directory
        (Condor's ``transfer_input_files``)."""
        return isinstance(getattr(self.provider, "transfer_input_files", None), list)

    def _patch_providers(self) -> None:
        """A job of a staging provider (Condor) runs in a sandbox of its own:
        it is given the worker binary and the password file to transfer (the
        user's or lfm's own; the worker command names it by its base name)."""
        if self._stages_files():
            path = shutil.which(self.worker_executable.split()[0]) or self.worker_executable
            self.worker_command = "./" + self.worker_command
            self.provider.transfer_input_files.append(path)
            password = self._password_file()
            if password:
                self.provider.transfer_input_files.append(password)

    def _task_env(self) -> dict[str, str]:
        """``env`` for every task, plus a PYTHONPATH that finds lfm and the apps'
        modules where the workers see this machine's paths (a shared filesystem,
        or this machine) unless ``env`` sets PYTHONPATH itself."""
        env = {str(k): str(v) for k, v in self.env.items()}
        if "PYTHONPATH" not in env and not self.pack:  # packed: the package's paths only
            root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            paths = [os.getcwd(), root, *(p for p in sys.path if p and os.path.isdir(p))]
            env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        return env

    def _forget(self, task_id: int) -> None:
        with self._lock:
            self._tasks.pop(task_id, None)


def _refuse_unsupported(*, coprocess: bool) -> None:
    if coprocess:
        raise ValueError("coprocess=True cannot be honoured: it needs a cctools whose "
                         "work_queue_worker has --coprocess (Debian's has none), and lfm runs "
                         "each app in its own monitored process; use coprocess=False")
