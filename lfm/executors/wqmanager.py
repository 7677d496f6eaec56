"""The Work Queue manager process: ``python -m lfm.executors.wqmanager``.

Work Queue's Python binding holds the GIL inside ``WorkQueue.wait()`` (up to its
whole timeout), which would freeze every other thread of the user's program. So
the manager lives in its own process and talks to :mod:`lfm.executors.workqueue`
through its stdin/stdout with length-prefixed pickled messages:

parent -> manager: ``("submit", key, spec)``, ``("cancel", key)``, ``("stop",)``
manager -> parent: ``("started", port, name)``, ``("running", [key, ...])`` (the
tasks were dispatched to a worker), ``("workers", info)`` (the connected
workers changed: ``connected`` count and the largest ``cores``, ``memory`` MB,
``disk`` MB of any of them), ``("done", key, info)``, ``("cancelled", key)``,
``("refused", key, message)`` (Work Queue would not take the task's spec),
``("fatal", message)``

``spec``: command, inputs/outputs as (local path, remote name, cache), cores,
memory (MB), disk (MB), category, env, max_retries, extra (gpus, priority,
running_time_min s). ``info``: result code and its name,
return_status, host, stdout (last 4000 characters), exhausted attempts.
With ``--password-file FILE`` every worker must present that password.
The manager exits when its stdin closes (the parent died) or on "stop".

Dispatch is seen by polling, cheaply: after each ``wait()`` one ``stats`` call
(~10 us) says how many tasks are still READY; only when fewer are than the
manager believes undispatched does it ask ``task_state`` (~5 us each) of the
undispatched tasks, newest first (Work Queue dispatches the newest ready task
first), until it has found that many. Work Queue accepts workers only inside
``wait()``, which returns at once when no task is queued; with ``--watch-workers``
(the parent wants the connected workers' sizes even while idle) the manager
keeps one task queued that no worker can take (it requires a feature that no
worker has), so that ``wait()`` serves connections and statistics all along.
Its price: while idle, ``wait()`` blocks about a second, so the first
submission after an idle spell is read up to a second later (the parent asks
for it only when no workers of known size are given: remote workers).

After a round with nothing to do (idle, or only tasks still running),
``wait()`` first polls the workers' connections for up to a second before it
dispatches anything. A timer signal every :data:`POLL_INTERRUPT` s cuts that
poll short (Work Queue retries its reads and writes on EINTR), so a task is
dispatched as soon as it reaches Work Queue.
"""
from __future__ import annotations

import math
import os
import pickle
import select
import signal
import struct
import sys
import time
from typing import Any, BinaryIO

from lfm.checks import read_exactly

_HEADER = struct.Struct("!I")


def send(stream: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def receive(stream: BinaryIO) -> Any:
    """The next message, or None at end of stream."""
    header = read_exactly(stream.readinto, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    data = read_exactly(stream.readinto, size)
    if data is None:
        return None
    return pickle.loads(data)


#: seconds between the timer signals that end wait()'s idle poll
POLL_INTERRUPT = 0.05

#: the feature the idle-watch task requires: no worker advertises it
NEVER_FEATURE = "lfm-manager-idle-watch-never-dispatched"


def serve(port: int, name: str | None, wait_timeout: int, debug_log: str | None,
          password_file: str | None = None, watch_workers: bool = False) -> int:
    from lfm.executors.wqimport import load_work_queue

    inp = os.fdopen(sys.stdin.fileno(), "rb", buffering=0)  # unbuffered, so select() tells the truth
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # Work Queue's own prints must not corrupt the message stream
    try:
        wq = load_work_queue()
        if debug_log:
            wq.set_debug_flag("all")
            wq.specify_debug_log(debug_log)
        queue = wq.WorkQueue(port=port, name=name) if name else wq.WorkQueue(port=port)
    except Exception as exc:
        send(out, ("fatal", f"cannot start a Work Queue manager on port {port}: {exc}"))
        return 1
    # before the first wait(): workers are only accepted inside wait(), so none
    # can join before the password is required
    if password_file and not queue.specify_password_file(password_file):
        send(out, ("fatal", f"Work Queue could not read the password file {password_file}"))
        return 1
    send(out, ("started", queue.port, name))
    names = {getattr(wq, n): n[len("WORK_QUEUE_RESULT_"):] for n in dir(wq)
             if n.startswith("WORK_QUEUE_RESULT_")}
    by_key: dict[Any, Any] = {}   # key -> task
    key_of: dict[int, Any] = {}   # Work Queue task id -> key
    queued: dict[Any, int] = {}   # key -> task id, not yet seen dispatched (submission order)
    ready = wq.WORK_QUEUE_TASK_READY
    watch = None
    if watch_workers:
        watch = wq.Task("true")
        watch.specify_feature(NEVER_FEATURE)
        for resource in ("cores", "memory", "disk"):
            getattr(watch, f"specify_{resource}")(1)
        queue.submit(watch)
    signal.signal(signal.SIGALRM, lambda *_: None)
    signal.setitimer(signal.ITIMER_REAL, POLL_INTERRUPT, POLL_INTERRUPT)
    workers: tuple = ()
    while True:
        # commands: block briefly only when Work Queue has nothing to serve
        timeout = 0.0 if by_key or watch is not None else 0.5
        while select.select([inp], [], [], timeout)[0]:
            timeout = 0.0
            message = receive(inp)
            if message is None or message[0] == "stop":
                return 0
            if message[0] == "submit":
                _, key, spec = message
                try:
                    task = _task(wq, spec)
                except Exception as exc:   # one bad task must not take the manager (and every other task) down
                    send(out, ("refused", key, f"{type(exc).__name__}: {exc}"))
                    continue
                task_id = queue.submit(task)
                key_of[task_id] = key
                by_key[key] = task
                queued[key] = task_id
            elif message[0] == "cancel":
                task = by_key.pop(message[1], None)
                queued.pop(message[1], None)
                if task is not None:
                    key_of.pop(task.id, None)
                    queue.cancel_by_taskid(task.id)
                    send(out, ("cancelled", message[1]))
        if not by_key and watch is None:
            continue
        # one task per wait, then our stdin again: the parent's reaction to a
        # result (a retry) is read at once. wait() returns as soon as a task
        # is done; with none done it blocks about a second whatever the
        # timeout (even 0, measured with this binding), so it cannot be polled
        task = queue.wait(wait_timeout)
        stats = queue.stats
        now = (stats.workers_connected, stats.max_cores, stats.max_memory, stats.max_disk)
        if now != workers:
            workers = now
            send(out, ("workers", {"connected": now[0], "cores": now[1], "memory": now[2],
                                   "disk": now[3]}))
        if queued:
            # tasks dispatched since the last look: READY ones are still queued
            missing = len(queued) - (stats.tasks_waiting - (watch is not None))
            if missing > 0:
                started = []
                for key in reversed(queued):
                    if queue.task_state(queued[key]) != ready:
                        started.append(key)
                        if len(started) == missing:
                            break
                for key in started:
                    del queued[key]
                if started:
                    send(out, ("running", started))
        if task is None:
            continue
        key = key_of.pop(task.id, None)
        if key is None:
            continue
        by_key.pop(key, None)
        queued.pop(key, None)
        stdout = _get(task, "output", "") or ""
        start, finish = _get(task, "execute_cmd_start", 0), _get(task, "execute_cmd_finish", 0)
        result = _get(task, "result", -1)
        send(out, ("done", key, {
            "result": result, "result_name": names.get(result, str(result)),
            "return_status": _get(task, "return_status", -1), "host": _get(task, "hostname", "") or "",
            "stdout": stdout[-4000:], "submissions": _get(task, "total_submissions", None),
            "wall_time": max(0.0, (finish - start) / 1e6) if start and finish else 0.0,
            "finished": time.time()}))


def _get(task: Any, name: str, default: Any) -> Any:
    """A task attribute; the Debian binding names some that its library lacks."""
    try:
        return getattr(task, name)
    except Exception:
        return default


def _task(wq: Any, spec: dict[str, Any]) -> Any:
    task = wq.Task(spec["command"])
    for local, remote, cache in spec.get("inputs", ()):
        task.specify_input_file(local, remote, cache=bool(cache))
    for local, remote, cache in spec.get("outputs", ()):
        task.specify_output_file(local, remote, cache=bool(cache))
    if spec.get("cores") is not None:
        task.specify_cores(int(spec["cores"]))
    if spec.get("memory") is not None:
        task.specify_memory(int(spec["memory"]))
    if spec.get("disk") is not None:
        task.specify_disk(int(spec["disk"]))
    if spec.get("category"):
        task.specify_category(str(spec["category"]))
    if spec.get("max_retries"):
        task.specify_max_retries(int(spec["max_retries"]))
    extra = spec.get("extra") or {}
    # a count and whole seconds for Work Queue: rounded up, so that 0.5 GPU is never 0
    if extra.get("gpus") is not None:
        task.specify_gpus(math.ceil(extra["gpus"]))
    if extra.get("priority") is not None:
        task.specify_priority(float(extra["priority"]))
    if extra.get("running_time_min") is not None:
        task.specify_running_time_min(math.ceil(extra["running_time_min"]))
    for name, value in (spec.get("env") or {}).items():
        task.specify_environment_variable(name, value)
    return task


def main(argv: list[str]) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="python -m lfm.executors.wqmanager")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default=None)
    parser.add_argument("--wait-timeout", type=int, default=1)
    parser.add_argument("--debug-log", default=None)
    parser.add_argument("--password-file", default=None)
    parser.add_argument("--watch-workers", action="store_true")
    args = parser.parse_args(argv)
    # The parent decides when to stop (it sends "stop", or its death closes our stdin):
    # a Ctrl-C in the terminal must not kill the manager under the parent's feet.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return serve(args.port, args.name, args.wait_timeout, args.debug_log, args.password_file,
                 args.watch_workers)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
