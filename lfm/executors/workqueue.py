"""The Work Queue backend: each attempt becomes a real Work Queue task.

A manager process (:mod:`lfm.executors.wqmanager`) owns the ``WorkQueue`` object;
this module writes each call to a serialized input file, asks the manager to
submit ``<python> -m lfm.executors.runner in.pkl out.pkl`` labelled with the
attempt's cores, memory (MB) and disk (MB) and its category, and turns the
task's result (the runner's output file, or Work Queue's own result code) into
an :class:`~lfm.executors.backend.Outcome`.

Workers: ``workers=[{"cores": 2, "memory": 2000, "disk": 4000}, ...]`` starts
local ``work_queue_worker`` processes of those sizes (stopped at shutdown);
otherwise start workers yourself, on any machine, with the command printed at
start (``work_queue_worker HOST PORT``, or ``-M PROJECT`` with
``project_name``). Every manager requires a password (``lfm.executors.wqauth``):
a random one made for it in its staging directory, or the user's
``password_file``; local workers get it, and the printed command carries
``--password FILE``. A remote worker needs lfm (and the modules your functions
live in) installed for the Python it runs (option ``python``, default
``python3``; local workers use this interpreter and its ``sys.path``).

A call is RUNNING (``Future.running()``) only once Work Queue has dispatched
its task to a worker; until then ``cancel()`` withdraws it from Work Queue and
returns True. A dispatched call cannot be cancelled (``cancel()`` returns False),
as ``concurrent.futures`` has it.

Largest worker: with ``workers=`` it is the largest of them, with
``max_resources=`` what you state; with neither, the largest worker connected
now, from the manager's worker statistics (``max_resources()`` is live, empty
until a worker has connected), and the executor caps labels to it. A worker
offers as disk at most its memory: Debian's cctools 9.9 manager does not
dispatch a task whose disk exceeds the worker's memory (measured), so disk is
counted that way everywhere here. While workers are connected and none is
large enough for a queued task (per resource: cores, memory MB, disk MB), the
task waits at most ``fit_timeout`` seconds and then fails with
:class:`lfm.ResourceExhaustion` naming its label and the largest worker. While
no worker at all is connected (they are often still in a batch queue), tasks
wait without limit, as Work Queue's own do; the clock starts when a worker
connects and restarts whenever one that fits is connected.
"""
from __future__ import annotations

import logging
import os
import shutil
import shlex
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lfm.checks import positive
from lfm.executors.backend import Attempt, Outcome, limits_from_label
from lfm.executors.calls import check_env
from lfm.executors.pystart import local_runner
from lfm.executors.runner import read_outcome, write_call
from lfm.executors.wqauth import (TOKEN_ENV, check_max_output_mb, copy_hint, manager_password,
                                  new_secret, output_limit_bytes, task_token, warn_open_manager,
                                  worker_argv)
from lfm.executors.wqimport import INSTALL_HINT, load_work_queue
from lfm.executors.wqchannel import ManagerChannel
from lfm.executors.wqresults import WorkQueueTaskError, task_outcome
from lfm.executors.wqlocal import LocalWorkers
from lfm.executors.wqworkers import (WORKER_RESOURCES, check_workers, dispatchable, unfit_error, unfit_tasks,
                                     work_queue_allocation)
from lfm.resources import CallKilled

log = logging.getLogger(__name__)

__all__ = ["WorkQueueBackend", "WorkQueueTaskError", "FIT_TIMEOUT", "WORKER_RESOURCES", "work_queue_allocation"]

#: default of ``fit_timeout``: seconds a queued task waits while connected
#: workers are all too small for it
FIT_TIMEOUT = 60.0


class WorkQueueBackend:
    """Runs attempts as Work Queue tasks (see the module docstring).

    port : manager port; 0 picks a free one (read it back as ``.port``).
    project_name : advertise the manager to the catalog under this name
        (workers can then connect with ``-M project_name``).
    workers : sizes of local workers to start, dicts with ``cores``, ``memory``
        (MB), ``disk`` (MB); heterogeneous sizes allowed. One that exits while
        the backend runs is started again (:class:`~lfm.executors.wqlocal.LocalWorkers`).
    max_resources : the largest worker (cores, memory MB, disk MB) when workers
        connect from elsewhere; default: the largest of ``workers``, or without
        ``workers`` the largest worker connected now (see the module docstring).
    fit_timeout : seconds a queued task may wait while workers are connected
        but none is large enough for it, before it fails with
        :class:`lfm.ResourceExhaustion` (default :data:`FIT_TIMEOUT`; None waits
        for ever, as Work Queue does).
    init_command : shell command run before the runner in every task, joined
        to it with ``; `` as Parsl's ``WorkQueueExecutor`` does (e.g.
        ``"source /opt/env/bin/activate"``).
    python : interpreter that runs the runner on the workers (default this one
        for local workers, ``python3`` when no local worker is started). Local
        workers given this process's own interpreter and ``sys.path`` start it
        without ``site`` when that only adds paths (``lfm.executors.pystart``:
        a sixth of a trivial task's CPU time saved).
    env : extra environment variables of every task.
    interval : seconds between the runner's limit checks of the call.
    task_retries : Work Queue's own retries of a task (worker lost, ...);
        0 = Work Queue's default (retry until it runs).
    verbose : print the worker command when no local workers are started.
    password : require workers to present a password (default True). False
        opens the manager to any host that can reach its port (a warning says
        so, once): a worker can then send back a result that runs code here.
    password_file : the user's own password file (kept at shutdown); default:
        a random password made for this manager, mode 0600, in its staging
        directory, removed at shutdown. Read the path back as ``.password_file``.
    staging_dir : where the per-run staging directory is made (default the
        system's temporary directory).
    debug_log : file for Work Queue's own debug log (all flags), or None.
    max_output_mb : the largest outcome file (the call's pickled result or
        exception) accepted from a worker, MB; larger ones are refused unread.
        Default: twice the attempt's memory label + 256 MB (without a memory
        label: twice the largest worker's memory + 256 MB, else 8192 MB);
        ``math.inf``: no limit.
    pack : run every task inside a package of its category's measured
        software environment (:mod:`lfm.pack.wq`), sent as a cached input
        file, so workers need only a Python of this minor version.
    extra_pkgs : with ``pack``, installed distributions to add to every
        package (names, or ``name==version`` of the installed version).
    include_python : with ``pack``, pack this interpreter too
        (:mod:`lfm.pack.python`). ``pack_cache``: the packages' directory on
        this side (default ``lfm.pack.cache_dir()``).
    """

    name = "workqueue"

    def __init__(self, port: int = 0, project_name: str | None = None,
                 workers: Iterable[Mapping[str, float]] | None = None,
                 max_resources: Mapping[str, float] | None = None, python: str | None = None,
                 env: Mapping[str, str] | None = None, interval: float = 0.1, task_retries: int = 0,
                 verbose: bool = True, staging_dir: str | None = None,
                 debug_log: str | None = None, password: bool = True,
                 password_file: str | None = None, fit_timeout: float | None = FIT_TIMEOUT,
                 init_command: str = "", max_output_mb: float | None = None,
                 pack: bool = False, extra_pkgs: Iterable[str] | None = None,
                 include_python: bool = False, pack_cache: str | None = None) -> None:
        load_work_queue()  # fail here, with the install hint, when Work Queue is absent
        self.worker_sizes = check_workers(workers)
        if shutil.which("work_queue_worker") is None and self.worker_sizes:
            raise FileNotFoundError(f"work_queue_worker is not on PATH; {INSTALL_HINT}")
        #: the stated largest worker, or None: the largest connected one counts
        self._max: dict[str, float] | None = None
        if max_resources is not None:
            self._max = dispatchable({r: float(v) for r, v in max_resources.items()})
        elif self.worker_sizes:
            self._max = dispatchable({r: max(w[r] for w in self.worker_sizes)
                                       for r in WORKER_RESOURCES})
        self.fit_timeout = None if fit_timeout is None else \
            positive(fit_timeout, "fit_timeout (or None: wait for ever)", unit="s")
        self.init_command = str(init_command or "")
        #: the connected workers as the manager last reported them (count, largest)
        self._live: dict[str, float] = {}
        self.requested_port = int(port)
        self.project_name = project_name
        self.python = python or (sys.executable if self.worker_sizes else "python3")
        self.env = check_env(env)
        from lfm.pack.wq import make_pack
        self.pack = make_pack(pack, self.python, extra_pkgs, include_python, pack_cache)
        self.interval = float(interval)
        self._staging = tempfile.mkdtemp(prefix="lfm-wq-", dir=staging_dir)
        try:
            self._password = manager_password(password, password_file, self._staging)
        except BaseException:
            shutil.rmtree(self._staging, ignore_errors=True)
            raise
        #: the file workers present with ``--password`` (None: an open manager)
        self.password_file = self._password.path if self._password else None
        self.max_output_mb = check_max_output_mb(max_output_mb)
        self._secret = new_secret()  # each task's outcome token (wqauth.task_token)
        #: the runner's command line, before its IN and OUT arguments
        self.runner = f"{self.python} -m lfm.executors.runner"
        if self.worker_sizes:   # local workers import what this process can (lfm, the functions' modules)
            self.runner = local_runner(self.python, python is None, self.env, self._staging)
        self.task_retries = int(task_retries)
        self.verbose = verbose
        self.debug_log = debug_log
        self.port: int | None = None
        #: the manager process and the pipes to it
        self.manager = ManagerChannel(self.requested_port, project_name, debug_log, self.password_file,
                                      watch_workers=self._max is None)
        #: the local workers (``workers=``), started with the manager
        self.local = LocalWorkers(self.worker_sizes, self._staging, self.password_file,
                                  on_lost=self._lost_workers, connected=lambda: bool(self._live.get("connected")))
        self._lock = threading.Lock()
        self._attempts: dict[str, Attempt] = {}
        self._dispatched: set[str] = set()       # keys Work Queue sent to a worker
        self._needs: dict[str, dict[str, float]] = {}  # key -> what the task asks of a worker
        self._unfit_since: dict[str, float] = {}  # key -> monotonic time since it fits no worker
        self._done: Callable[[Attempt, Outcome], None] | None = None
        self._closed = False
        self._gone = False     # the manager process exited by itself (see _read)
        self._no_workers: str | None = None   # why no local worker is left (see _lost_workers)
        self._seq = 0

    # ---- Backend protocol --------------------------------------------------------------
    def start(self, done: Callable[[Attempt, Outcome], None]) -> None:
        self._done = self.pack.wrap(done, self.submit) if self.pack else done
        self.port = self.manager.start()
        if self._password is None:
            warn_open_manager(self.port)
        threading.Thread(target=self._read, name="lfm-wq-reader", daemon=True).start()
        if self.fit_timeout is not None:
            threading.Thread(target=self._watch_fit, name="lfm-wq-fit", daemon=True).start()
        self.local.start(self.port)
        if not self.worker_sizes and self.verbose:
            print(f"lfm: Work Queue manager listening; start workers with:\n  {self.worker_command()}"
                  + copy_hint(self.password_file), file=sys.stderr, flush=True)

    def max_resources(self) -> dict[str, float]:
        """The largest worker: cores, memory MB, disk MB (see the module
        docstring); live, from the connected workers, when neither ``workers``
        nor ``max_resources`` was given (empty while none is connected)."""
        if self._max is not None:
            return dict(self._max)
        return _largest_connected(self._live)

    def submit(self, attempt: Attempt) -> None:
        """Queue the attempt as a Work Queue task; it starts (``attempt.starting()``)
        when the manager reports it dispatched to a worker."""
        if self._closed:
            raise RuntimeError("the Work Queue backend is shut down")
        with self._lock:
            refused = self._refusal()
            self._seq += 1
            key = f"t{attempt.task_id}.a{attempt.number}.{self._seq}"
        if refused is not None:   # not even written: nothing would ever run it
            self._deliver(attempt, Outcome("error", error=refused))
            return
        directory = os.path.join(self._staging, key)
        os.mkdir(directory)
        in_path, out_path = os.path.join(directory, "in.pkl"), os.path.join(directory, "out.pkl")
        asked = work_queue_allocation(attempt.label)
        try:
            fn = self.pack.function(attempt) if self.pack else attempt.fn
            # enforced at what the worker grants (whole MB), not at a fraction of
            # an MB below it: a call 0.01 MB over a 11.98 MB label fits its 12 MB
            write_call(in_path, fn, attempt.args, attempt.kwargs,
                       limits_from_label({**attempt.label, **asked}), self.interval)
        except Exception as exc:
            shutil.rmtree(directory, ignore_errors=True)
            self._deliver(attempt, Outcome("error", error=exc))
            return
        attempt.handle = (key, directory, out_path)
        command = f"{self.runner} in.pkl out.pkl"
        if self.init_command:
            command = f"{self.init_command}; {command}"
        spec = {"command": command,
                "inputs": [(in_path, "in.pkl", False), *attempt.inputs],
                "outputs": [(out_path, "out.pkl", False), *attempt.outputs],
                "extra": dict(attempt.extra),
                **{r: asked.get(r) for r in WORKER_RESOURCES},
                "category": attempt.category, "max_retries": self.task_retries,
                "env": {**self.env, TOKEN_ENV: task_token(self._secret, key)}}
        if self.pack:
            spec = self.pack.task(attempt, spec)
        with self._lock:   # again: the manager or the last worker may have gone meanwhile
            refused = self._refusal()
            if refused is None:
                self._attempts[key] = attempt
                self._needs[key] = {r: float(spec[r]) for r in WORKER_RESOURCES if spec[r] is not None}
        if refused is not None:
            shutil.rmtree(directory, ignore_errors=True)
            self._deliver(attempt, Outcome("error", error=refused))
            return
        self.manager.send(("submit", key, spec))

    def _refusal(self) -> WorkQueueTaskError | None:
        """Why no task can run any more (caller holds the lock): the manager
        process exited, or every local worker was given up and none is
        connected; None while tasks can run."""
        if self._gone:
            return WorkQueueTaskError("the Work Queue manager process has exited (see its error output): "
                                      "no task can run", result="MANAGER_EXITED")
        if self._no_workers is not None and not self._live.get("connected"):
            return WorkQueueTaskError(self._no_workers, result="NO_WORKERS")
        return None

    def allocation(self, label: Mapping[str, float]) -> dict[str, float]:
        """What Work Queue grants a task labelled ``label``: see
        :func:`work_queue_allocation`."""
        return work_queue_allocation(label)

    def cancel(self, attempt: Attempt) -> bool:
        """Withdraw an attempt that Work Queue has not dispatched yet: True if it
        was withdrawn (``done`` is then not called for it); False once it runs
        on a worker, or when it is already over."""
        if attempt.handle is None:
            return False
        key = attempt.handle[0]
        with self._lock:
            if key in self._dispatched or self._attempts.get(key) is not attempt:
                return False
            self._forget(key)
        self._withdraw(attempt)
        return True

    def _forget(self, key: str) -> Attempt | None:
        """Drop an attempt's bookkeeping (caller holds the lock); the attempt."""
        self._dispatched.discard(key)
        self._needs.pop(key, None)
        self._unfit_since.pop(key, None)
        return self._attempts.pop(key, None)

    def _forget_all(self) -> list[Attempt]:
        """Drop every outstanding attempt's bookkeeping (caller holds the lock)."""
        return [a for a in map(self._forget, list(self._attempts)) if a is not None]

    def _withdraw(self, attempt: Attempt) -> None:
        key, directory, _ = attempt.handle
        self.manager.send(("cancel", key))
        shutil.rmtree(directory, ignore_errors=True)

    def _fail(self, attempt: Attempt, error: BaseException) -> None:
        """Withdraw a forgotten attempt from the manager and fail it with ``error``."""
        self._withdraw(attempt)
        self._deliver(attempt, Outcome("error", error=error))

    def shutdown(self, wait: bool = True) -> None:
        """Stop the manager and the local workers (killing their tasks); the
        executor calls it with ``wait=True`` only after every call resolved."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.local.close()
        self.manager.stop()
        self.local.stop()
        with self._lock:
            left = self._forget_all()
        for attempt in left:
            self._fail(attempt, CallKilled("the Work Queue backend shut down while the task was queued "
                                           "or running"))
        if self._password is not None:
            self._password.remove()
        shutil.rmtree(self._staging, ignore_errors=True)

    # ---- workers -----------------------------------------------------------------------
    def worker_argv(self, size: Mapping[str, float] | None = None, *, workdir: str | None = None,
                    options: Iterable[str] = ()) -> list[str]:
        """The ``work_queue_worker`` argv that connects a worker to this manager:
        ``size`` (cores, memory MB, disk MB; any subset) as its resources,
        ``workdir`` its ``--workdir``, ``options`` further worker flags, the
        password file when the manager has one, then ``-M project_name`` or
        this host's name and the port (known once started, or given)."""
        return worker_argv(self._address(), size, workdir=workdir, options=options,
                           password_file=self.password_file)

    def worker_command(self, size: Mapping[str, float] | None = None) -> str:
        """:meth:`worker_argv` as one shell command line."""
        return shlex.join(self.worker_argv(size))

    def _address(self, host: str | None = None) -> list[str]:
        if self.project_name:
            return ["-M", self.project_name]
        port = self.port if self.port is not None else self.requested_port
        if not port:
            raise RuntimeError("the worker command needs the manager's port: start the backend "
                               "first (port=0 picks one at start) or give port=")
        return [host or socket.getfqdn(), str(port)]

    def _lost_workers(self, reason: str) -> None:
        """Every local worker was given up and none is connected: fail the
        outstanding attempts, and (``_no_workers``) every later one."""
        with self._lock:
            first = self._no_workers is None
            self._no_workers = reason
            left = self._forget_all() if first else []
        for attempt in left:
            self._fail(attempt, WorkQueueTaskError(reason, result="NO_WORKERS"))

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the local workers (each leads its own process group)."""
        return self.local.pids

    # ---- manager messages --------------------------------------------------------------
    def _read(self) -> None:
        for message in self.manager.messages():
            kind = message[0]
            if kind == "done":
                with self._lock:
                    started = message[1] in self._dispatched
                    attempt = self._forget(message[1])
                if attempt is None:
                    continue
                if not started and not attempt.starting():  # finished before we saw it start
                    shutil.rmtree(attempt.handle[1], ignore_errors=True)
                    continue
                self._deliver(attempt, self._outcome(attempt, message[2]))
            elif kind == "refused":
                with self._lock:
                    attempt = self._forget(message[1])
                if attempt is not None:
                    self._fail(attempt, WorkQueueTaskError(f"Work Queue refused the task: {message[2]}",
                                                           result="REFUSED"))
            elif kind == "running":
                for key in message[1]:
                    self._running(key)
            elif kind == "workers":
                self._live = dict(message[1])
        # the manager is gone: whatever was outstanding will never finish
        # (after shutdown() stopped it, shutdown() itself reports them killed)
        with self._lock:
            if self._closed:
                return
            self._gone = True   # submit fails from now on: nothing would ever run
            left = self._forget_all()
        for attempt in left:
            self._fail(attempt, WorkQueueTaskError(
                "the Work Queue manager process exited while the task was outstanding",
                result="MANAGER_EXITED"))

    def _running(self, key: str) -> None:
        """Work Queue dispatched the task: the attempt starts now."""
        with self._lock:
            attempt = self._attempts.get(key)
            if attempt is None or key in self._dispatched:
                return
            self._dispatched.add(key)
            self._unfit_since.pop(key, None)
        if not attempt.starting():  # its call was cancelled meanwhile
            with self._lock:
                self._forget(key)
            self._withdraw(attempt)

    # ---- tasks no connected worker fits ------------------------------------------------
    def _watch_fit(self) -> None:
        period = min(1.0, self.fit_timeout / 4)
        while not self._closed:
            time.sleep(period)
            try:
                self._check_fit(time.monotonic())
            except Exception:  # pragma: no cover - never let the watcher die silently
                log.exception("lfm: the Work Queue fit check failed")

    def _check_fit(self, now: float) -> None:
        """Fail queued tasks that no connected worker has fitted for ``fit_timeout`` s."""
        live = self._live
        largest = _largest_connected(live)
        if not largest:
            self._unfit_since.clear()  # no worker yet: wait for one, without limit
            return
        with self._lock:
            queued = {k: v for k, v in self._needs.items() if k not in self._dispatched}
            expired = unfit_tasks(queued, largest, self._unfit_since, now, self.fit_timeout)
            gone = [(over, self._forget(key)) for key, over in expired]
        for over, attempt in gone:
            if attempt is not None:
                self._fail(attempt, unfit_error(attempt.label, over, largest, int(live["connected"]),
                                                self.fit_timeout))

    def _outcome(self, attempt: Attempt, info: dict[str, Any]) -> Outcome:
        key = attempt.handle[0]

        def read(out_path: str, host: str) -> Outcome:
            limit = output_limit_bytes(self.max_output_mb, attempt.label,
                                       self.max_resources().get("memory"))
            return read_outcome(out_path, token=task_token(self._secret, key), host=host,
                                max_bytes=limit)
        outcome = task_outcome(attempt, info, self.python, read)
        # charge what the worker granted; where it did not say, what was asked
        outcome.granted = {**work_queue_allocation(attempt.label), **outcome.granted}
        return outcome

    def _deliver(self, attempt: Attempt, outcome: Outcome) -> None:
        if self._done is not None:
            self._done(attempt, outcome)


def _largest_connected(live: Mapping[str, float]) -> dict[str, float]:
    """What the largest connected worker offers (cores, memory MB, disk MB), as
    the manager last reported the connected workers; empty while none is."""
    if not live.get("connected"):
        return {}
    return dispatchable({r: float(live[r]) for r in WORKER_RESOURCES})
