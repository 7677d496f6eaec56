"""``AutolabelExecutor``: a ``concurrent.futures.Executor`` that labels every call
with resources chosen by a predictor, learns from each measurement and retries a
call that outgrows its label with a larger one. One implementation for every
backend (see :mod:`lfm.executors.backend`).

Units: cores a float, memory and disk in MB, wall_time in seconds.
"""
from __future__ import annotations

import atexit
import concurrent.futures as cf
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from lfm.executors.arguments import (check_max_retries, check_predictor, check_resources, make_backend,
                                    make_predictor, make_trace)
from lfm.executors.backend import Attempt, Backend, Outcome
from lfm.executors.calls import How, Options, Task, check_category, check_declared, check_extra, resolve
from lfm.executors.features import call_features, trace_columns
from lfm.executors.labels import Labelling, exhaustion
from lfm.executors.stats import StatsBook
from lfm.pack.book import Environments
from lfm.resources import ResourceExhaustion, Resources

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

#: Category of every call when ``autocategory=False`` and none is given.
DEFAULT_CATEGORY = "default"

class AutolabelExecutor(Labelling, cf.Executor):
    """Run calls with predicted resource labels; retry exhaustions with larger ones.

    Parameters
    ----------
    backend : ``"local"`` (this machine, the default), ``"workqueue"`` (a real Work
        Queue manager) or a backend object (:class:`lfm.executors.backend.Backend`).
        ``**backend_options`` go to the backend's constructor (e.g. ``capacity=``
        for local; ``port=``, ``workers=``, ``project_name=`` for Work Queue;
        ``pack=True``, ``extra_pkgs=[...]``, ``include_python=`` for Work Queue
        ship each category's measured software environment, see :mod:`lfm.pack`).
    predictor : a registered predictor name (default ``"auto"``: per category the
        policy that would have cost least so far; also ``"greedy"``, ``"exhaustive"``,
        ``"max-seen"``, ...) created with ``resources`` and the backend's largest
        worker as ``max_resources``, or a ``predictors.base.Predictor`` object.
    autolabel : with True (default) labels come from the predictor and declared
        resources are first guesses; with False the executor is a plain
        resource-aware executor: a call runs with its declared resources as hard
        limits (as Work Queue treats them) or, if none, a whole worker, and an
        exhaustion is final.
    autocategory : category = the function's ``__qualname__`` (True) or
        :data:`DEFAULT_CATEGORY` for every call (False); ``options(category=...)``
        overrides both.
    resources : resources to label (subset of cores, memory, disk, wall_time).
    max_retries : retries after the first attempt before a call's future fails
        with :class:`lfm.ResourceExhaustion` (its ``attempts`` is the history).
    trace : None, a path or an object with ``append(row)`` (e.g.
        ``lfm.trace.Trace``): one row per attempt, in lfm's trace schema.

    Declared resources (``options(resources=...)``) are *first guesses* when
    ``autolabel=True``: the first attempt uses them (other resources from the
    predictor), and an exhaustion still retries with the predictor's next,
    larger label, because the point of autolabelling is that users' guesses
    are often wrong. With ``autolabel=False`` they are hard limits.

    **Bursts of a new category.** A predictor learns from measurements, and
    a workflow often submits many calls of a category before the first one
    has finished. Until a category's first call has succeeded, the first
    call in flight gets the predictor's label (which may probe small), and
    every call submitted while one of the category is in flight gets at
    least the published cold start
    (:data:`lfm.executors.labels.BURST_FLOOR`: 1 core, 1000 MB memory,
    1000 MB disk, capped to the largest worker), as the reference
    bucketing algorithms start: otherwise the whole burst would outgrow a
    probing label together and be retried together. From the first
    measurement on, labels are the predictor's.

    **Retries.** Only an exhaustion is retried: the call exceeded its memory,
    disk or wall_time label (killed by lfm's monitor or by Work Queue), or it
    was SIGKILLed while the machine's OOM-kill count (``/proc/vmstat``) rose.
    The next attempt gets the predictor's next label, strictly larger in every
    exceeded resource and capped to the backend's largest worker; there are
    at most ``max_retries`` retries. Nothing else is retried by lfm (an app's
    exception, ``sys.exit``, a signal): Work Queue's own ``task_retries`` rerun
    a task whose worker was lost, and Parsl's ``Config(retries=)`` reruns apps.

    **What** ``Future.result()`` **raises** (``exception()`` returns the same):

    * the call's own exception (any ``Exception``), with the traceback from
      the call's process as its ``__cause__`` (:class:`lfm.RemoteTraceback`);
    * :class:`lfm.ResourceExhaustion` when no attempt fitted: the label
      reached the largest worker, ``max_retries`` retries were spent, the
      predictor had no larger label, ``autolabel=False`` (declared resources
      are final), hard limits above the largest worker (at once, without
      running: ``attempts`` is empty), or on Work Queue ``fit_timeout``
      expired. Its ``attempts`` lists every attempt (dicts with ``attempt``,
      ``label``, ``status``, ``resources``, ``exceeded``, ``host``,
      ``backend``, ``granted``); the message names the label and the largest
      worker;
    * :class:`lfm.CallExited` when the call ended its process: ``sys.exit(n)``
      or an ``argparse`` error ("f called sys.exit(2)"; ``code``), or
      ``os._exit(n)`` ("f exited with status n without returning");
    * :class:`lfm.CallAborted` when it raised another ``BaseException``
      (``KeyboardInterrupt``, ``GeneratorExit``, ...; ``exception`` is the
      original when it could be sent back). No ``BaseException`` of a call
      is ever raised as such in the caller;
    * :class:`lfm.CallKilled` when the call's process was killed by a signal
      (``signal``; a SIGSEGV, someone's SIGKILL), or by :meth:`kill` while it
      ran (also at interpreter exit), or when the Work Queue backend shut down
      under it;
    * :class:`lfm.SerializationError` when an argument, the result or the
      exception cannot be pickled, or cannot be unpickled on this side (e.g. an
      exception class only the worker can import); the message names which
      (an exception: its type and message; its traceback is the ``__cause__``);
    * :class:`lfm.executors.WorkQueueTaskError` (Work Queue only) when lfm's
      runner itself could not run the call (it says why: lfm not importable
      there, interpreter missing, output not writable or refused), Work Queue
      gave up on the task (``result``: e.g. ``"MAX_RETRIES"``), refused its
      options (``"REFUSED"``), the manager process died (``"MANAGER_EXITED"``:
      the calls outstanding then, and every call submitted after), or the
      local workers of ``workers=`` keep exiting as soon as they start
      (``"NO_WORKERS"``, while no other worker is connected);
    * ``concurrent.futures.CancelledError`` when the call was cancelled (see
      below), or when :meth:`kill` or ``shutdown(cancel_futures=True)`` ended
      a call between two attempts (then ``cancelled()`` stays False: it had
      started).

    Whatever happens, every future resolves: a bug in lfm's own bookkeeping
    fails the future with that error rather than leaving it pending.

    **Running and cancellation.** A future is RUNNING (``running()``) only
    once its first attempt really started: on the local backend when the
    call's process is started (its label fitted the free capacity), on Work
    Queue when its task was dispatched to a worker. Until then ``cancel()``
    withdraws it and returns True, ``cancelled()`` is then True and the call
    never runs. A running call cannot be cancelled (``cancel()`` returns
    False), including while it waits for a retry; :meth:`kill` stops it.

    **Done-callbacks** (``add_done_callback``) run in the thread that resolves
    the future: on the local backend the thread that ran the attempt
    (``lfm-local-task<id>.<attempt>``), on Work Queue the thread reading the
    manager's results (``lfm-wq-reader``; ``lfm-wq-fit`` for a
    ``fit_timeout`` failure); the thread that called ``cancel()``,
    ``shutdown()`` or :meth:`kill` for the futures they cancel; the submitting
    thread when ``submit()`` itself resolved the future (hard limits above
    the largest worker, or on Work Queue an argument that cannot be pickled).
    A callback added to a done future runs at once in the adding thread, as
    ``concurrent.futures`` has it. Keep callbacks short: on Work Queue every
    later result waits while one runs, so never wait in a callback for another
    future of the same executor.

    **Shutdown.** :meth:`shutdown` refuses new submissions (``RuntimeError``).
    ``cancel_futures=True`` cancels every call that has not started and every
    pending retry; calls already running go on. ``wait=True`` returns once
    every submitted call has resolved and the backend is released (local
    workers and the manager stopped, staging files removed); ``wait=False``
    returns at once, the calls still run (or are cancelled) as above and the
    backend is released in the background once they have all resolved.
    Leaving a ``with`` block is ``shutdown(wait=True)``; leaving it by
    ``KeyboardInterrupt`` (Ctrl-C) is :meth:`kill`.

    **Interpreter exit.** An executor not yet released when the program
    ends (never shut down, ``shutdown(wait=False)`` still waiting for its
    calls, or an uncaught Ctrl-C) is stopped by :meth:`kill` from an
    ``atexit`` handler: queued calls are cancelled, running ones killed
    (their futures fail with :class:`lfm.CallKilled`), and no call process,
    Work Queue manager or local worker outlives the program. Unlike
    ``ThreadPoolExecutor``, lfm does not wait for running calls at exit:
    call ``shutdown()`` to let them finish.
    """

    def __init__(self, backend: str | Backend = "local", predictor: Any = "auto",
                 autolabel: bool = True, autocategory: bool = True,
                 resources: Iterable[str] = ("cores", "memory", "disk"), max_retries: int = 10,
                 trace: Any = None, **backend_options: Any) -> None:
        # checked before the backend starts anything (a Work Queue manager, workers)
        max_retries = check_max_retries(max_retries)
        resources = check_resources(resources)
        check_predictor(predictor)
        self._trace = make_trace(trace)
        self._owns_trace = self._trace is not trace   # a Trace made here from a path: closed at the end
        self.backend: Backend = make_backend(backend, backend_options)
        self.autolabel = bool(autolabel)
        self.autocategory = bool(autocategory)
        self.max_retries = int(max_retries)
        self._max = {k: float(v) for k, v in (self.backend.max_resources() or {}).items()}
        try:
            self.predictor = make_predictor(predictor, tuple(resources), self._max)
        except BaseException:
            self.backend.shutdown(wait=False)   # nothing started yet: its staging directory, password file
            raise
        self.resources = tuple(self.predictor.resources)
        self._stats = StatsBook(self.resources)
        # per category, the software environment its calls imported (lfm.pack)
        self.environments = getattr(getattr(self.backend, "pack", None), "environments", None) \
            or Environments()
        self._lock = threading.RLock()  # guards the predictor, task table and shutdown flag
        self._ids = itertools.count(1)
        #: categories with a successful call; per category, its calls not yet resolved
        self._measured: set[str] = set()
        self._in_flight: dict[str, int] = {}
        self._tasks: dict[int, Task] = {}
        self._shutdown = False
        self._finalized = False
        self._released = threading.Event()  # set once the backend is released
        self._releaser: threading.Thread | None = None
        self.backend.start(self._attempt_done)
        _live.add(self)

    # ---- concurrent.futures.Executor ---------------------------------------------------
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        """Run ``fn(*args, **kwargs)``; a Future of its result. ``kwargs`` all go to
        ``fn``: use :meth:`options` to give a category or resources."""
        return self._submit(fn, args, kwargs, None, None, None)

    def options(self, category: str | None = None,
                resources: Mapping[str, float] | None = None, *,
                features: Mapping[str, float] | Callable[..., Mapping[str, float]] | None = None,
                inputs: Iterable[tuple[str, str, bool]] | None = None,
                outputs: Iterable[tuple[str, str, bool]] | None = None,
                extra: Mapping[str, Any] | None = None) -> Options:
        """An executor view whose ``submit``/``map`` use this category and these
        declared resources (cores, memory MB, disk MB, wall_time s), e.g.
        ``ex.options(category="sim", resources={"memory": 800}).submit(f, x)``.

        ``features``: what is known about a call before it runs, a mapping
        name -> float (``input_size`` in MB) or a callable of the call's
        arguments returning one. ``inputs`` / ``outputs``: files staged to and
        from the worker, ``(local path, name in the task's sandbox, cache)``
        (Work Queue; the local backend shares this filesystem and ignores
        them). ``extra``: backend-specific task options (Work Queue:
        ``gpus``, ``priority``, ``running_time_min`` in s).

        A view instead of reserved keyword arguments, so that no name of the
        user function's own keyword arguments is ever taken by the executor.
        """
        category = check_category(category)
        if resources is not None:
            resources = check_declared(resources)
        how = How(features=features, inputs=list(inputs or ()), outputs=list(outputs or ()),
                   extra=check_extra(extra or {}))
        return Options(self, category, resources, how)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new submissions. ``cancel_futures``: cancel calls that have not
        started (and pending retries). ``wait``: block until every submitted call
        resolved, then release the backend; with ``wait=False`` the backend is
        released in the background once they have."""
        with self._lock:
            self._shutdown = True
            tasks = list(self._tasks.values())
        if cancel_futures:
            for task in tasks:
                self._cancel_task(task)
        if wait:
            cf.wait([t.future for t in tasks])
            self._release(wait=True)
        else:
            def later() -> None:
                cf.wait([t.future for t in tasks])
                self._release(wait=True)
            threading.Thread(target=later, name="lfm-executor-shutdown", daemon=True).start()

    def kill(self) -> None:
        """Stop now: cancel queued calls, kill running ones (their futures fail
        with :class:`lfm.CallKilled` or ``CancelledError``) and release the
        backend. Used on Ctrl-C and at interpreter exit."""
        with self._lock:
            self._shutdown = True
            tasks = list(self._tasks.values())
        for task in tasks:
            self._cancel_task(task)
        self._release(wait=False)
        for task in tasks:
            if not task.future.done():
                resolve(task, error=cf.CancelledError("executor was killed"))

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self.kill()
        else:
            self.shutdown(wait=True)
        return False

    # ---- results -----------------------------------------------------------------------
    def stats(self) -> "pd.DataFrame":
        """Per category: tasks, attempts, retries, tasks_retried, ok / exhausted /
        errors, Σ allocated·time and Σ used·time per resource (``alloc_<r>_s``,
        ``used_<r>_s``; MB·s, core·s), absolute efficiency ``ae_<r>`` and
        ``label`` (the predictor's current state: label or buckets)."""
        def describe(category: str) -> Any:
            with self._lock:
                return self.predictor.describe(category)
        return self._stats.frame(describe)

    def environment(self, category: str) -> Any:
        """The software environment of a category (an :class:`lfm.pack.Spec`):
        distributions with exact versions and local sources its calls imported
        (``.source == "run"``), or before any call ran the static scan of its
        function's module (``"static scan"``). See :mod:`lfm.pack`."""
        return self.environments.environment(category)

    # ---- internals ---------------------------------------------------------------------
    def _category(self, fn: Callable[..., Any], category: str | None) -> str:
        if category is not None:
            return category
        if not self.autocategory:
            return DEFAULT_CATEGORY
        return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__

    def _submit(self, fn: Callable[..., Any], args: tuple, kwargs: dict, category: str | None,
                declared: dict[str, float] | None, how: "How | None") -> cf.Future:
        if not callable(fn):
            raise TypeError(f"submit() needs a callable, got {type(fn).__name__}")
        category = self._category(fn, category)
        features = call_features(fn, args, kwargs, how.features if how else None)  # FeatureError: bad user features
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to an AutolabelExecutor after shutdown()")
            task = Task(next(self._ids), category, fn, args, dict(kwargs), declared or {},
                         how or How())
            task.features = features
            burst = task.category not in self._measured and bool(self._in_flight.get(task.category))
            label = self._first_label(task, burst)
            self._in_flight[category] = self._in_flight.get(category, 0) + 1
            self._tasks[task.id] = task
        self._stats.task_submitted(category)
        self.environments.note(category, fn)
        task.future.add_done_callback(lambda f, t=task: self._future_done(t, f))
        too_big = self._beyond_largest(task)
        if too_big is not None:
            self._finish(task, error=too_big)
        else:
            self._launch(task, label)
        return task.future

    def _launch(self, task: Task, label: dict[str, float]) -> None:
        number = len(task.attempts) + 1
        attempt = Attempt(task.id, number, task.category, task.fn, task.args, task.kwargs, label,
                          features=task.features, inputs=task.how.inputs,
                          outputs=task.how.outputs, extra=task.how.extra)
        attempt.on_start = lambda t=task: t.start()
        task.current = attempt
        self.backend.submit(attempt)

    def _attempt_done(self, attempt: Attempt, outcome: Outcome) -> None:
        """Backend callback: record the attempt, then resolve, retry or fail."""
        try:
            self._handle(attempt, outcome)
        except BaseException as exc:  # never lose a future to a bug in the bookkeeping
            log.exception("lfm executor: handling attempt %s of task %s failed", attempt.number,
                          attempt.task_id)
            task = self._tasks.get(attempt.task_id)
            if task is not None:
                resolve(task, error=exc)

    def _handle(self, attempt: Attempt, outcome: Outcome) -> None:
        task = self._tasks[attempt.task_id]
        res = outcome.resources
        wall = res.get("wall_time")
        if wall is None:
            wall = max(0.0, time.time() - attempt.started) if attempt.started else 0.0
        record = {"attempt": attempt.number, "label": dict(attempt.label), "status": outcome.status,
                  "resources": dict(res), "exceeded": dict(outcome.exceeded), "host": outcome.host,
                  "backend": self.backend.name, "granted": dict(outcome.granted)}
        task.attempts.append(record)
        self.environments.observe(task.category, outcome)
        # charged what the backend really allocated (Work Queue: whole cores)
        charged = {**attempt.label, **outcome.granted}
        self._stats.attempt(task.category, attempt.number, outcome.status, charged, res, wall)
        self._record_trace(task, attempt, outcome)

        if outcome.status == "ok":
            if self.autolabel:
                self._observe(task.category, res, task.features)
            with self._lock:
                self._measured.add(task.category)
            self._finish(task, value=outcome.value)
        elif outcome.status == "exhausted":
            next_label, why = self._next_label(task, attempt, outcome)
            if next_label is None:
                self._finish(task, error=exhaustion(task, attempt, outcome, why))
            elif task.future.done() or self._finalized:
                self._finish(task, error=cf.CancelledError("executor shut down before a retry"))
            else:
                self._launch(task, next_label)
        else:
            error = outcome.error or RuntimeError("attempt failed without an error")
            if isinstance(error, ResourceExhaustion) and not error.attempts:
                error.attempts = list(task.attempts)  # e.g. Work Queue's fit_timeout
            self._finish(task, error=error)

    def _observe(self, category: str, res: Resources, features: Mapping[str, float]) -> None:
        missing = [r for r in self.resources if r not in res]
        if missing:
            log.warning("lfm executor: measurement of a %r task lacks %s; not learnt from", category,
                        missing)
            return
        with self._lock:
            self.predictor.observe(category, res, features=features)

    def _record_trace(self, task: Task, attempt: Attempt, outcome: Outcome) -> None:
        if self._trace is None:
            return
        from lfm.trace import make_row
        try:
            features = {f"granted_{r}": v for r, v in outcome.granted.items()}
            features.update(trace_columns(task.features, set(features)))
            row = make_row(task.category, outcome.resources, outcome.status, alloc=attempt.label,
                           task_id=task.id, attempt=attempt.number, backend=self.backend.name,
                           host=outcome.host, exceeded=sorted(outcome.exceeded),
                           environment=self.environments.column(outcome), **features)
            self._trace.append(row)
        except Exception:
            log.exception("lfm executor: could not append attempt %s of task %s to the trace",
                          attempt.number, task.id)

    def _finish(self, task: Task, *, value: Any = None, error: BaseException | None = None) -> None:
        resolve(task, value=value, error=error)

    def _future_done(self, task: Task, future: cf.Future) -> None:
        with self._lock:
            self._tasks.pop(task.id, None)
            left = self._in_flight[task.category] - 1
            if left:
                self._in_flight[task.category] = left
            else:
                del self._in_flight[task.category]
        if future.cancelled():
            if task.current is not None:
                self.backend.cancel(task.current)
            task.start()  # CANCELLED -> CANCELLED_AND_NOTIFIED, which wait()/as_completed() count as done

    def _cancel_task(self, task: Task) -> None:
        attempt = task.current
        if attempt is None or task.future.done():
            return
        if self.backend.cancel(attempt):
            if not task.future.cancel():
                resolve(task, error=cf.CancelledError("executor shut down before a retry"))

    def _release(self, wait: bool) -> None:
        """Release the backend once; a second caller returns only when the
        first has finished (kill() at interpreter exit must not return while
        the background release of shutdown(wait=False) is half done: the
        interpreter would stop that thread and leave processes behind)."""
        with self._lock:
            first = not self._finalized
            self._finalized = True
            if first:
                self._releaser = threading.current_thread()
        if not first:
            if self._releaser is threading.current_thread():
                return  # e.g. kill() from a done-callback run by the release itself
            if not wait:
                self.backend.shutdown(wait=False)  # kill what a waiting release lets run
            self._released.wait()
            return
        try:
            self.backend.shutdown(wait=wait)
        finally:
            _live.discard(self)
            close = getattr(self._trace, "close", None)
            if callable(close) and self._owns_trace:
                close()
            self._released.set()


# Executors still running at interpreter exit are killed, so that no worker or
# monitored process outlives the program (e.g. after an uncaught Ctrl-C).
_live: "weakref.WeakSet[AutolabelExecutor]" = weakref.WeakSet()


@atexit.register
def _kill_live() -> None:
    for executor in list(_live):
        try:
            executor.kill()
        except Exception:  # pragma: no cover - best effort at exit
            pass
