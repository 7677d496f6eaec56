"""The local ``work_queue_worker`` processes a Work Queue backend starts
(``workers=``): starting each in a session of its own, starting again one that
exits while the backend runs, giving up one that cannot start, and stopping
them with the tasks they run."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping

from lfm.executors.wqauth import worker_argv

log = logging.getLogger(__name__)

#: A local worker that exits sooner than this (s) after its start exited "quickly" ...
QUICK_EXIT = 10.0
#: ... and after this many quick exits in a row it is not started again.
MAX_QUICK_EXITS = 3


class Restarts:
    """When to start again a local worker (``workers=``) that exited while the
    backend runs: always (it reached its idle ``--timeout``, was killed, or
    crashed), unless it exited within :data:`QUICK_EXIT` s of its start
    :data:`MAX_QUICK_EXITS` times in a row (it cannot run here: then it is
    given up). One per worker slot."""

    __slots__ = ("quick", "started")

    def __init__(self) -> None:
        self.quick = 0
        self.started = time.monotonic()

    def again(self, now: float) -> bool:
        """The slot's worker exited at ``now`` (monotonic s): start it again?"""
        self.quick = self.quick + 1 if now - self.started < QUICK_EXIT else 0
        self.started = now
        return self.quick < MAX_QUICK_EXITS


def kill_processes_under(directory: str) -> int:
    """SIGKILL every process of this user whose working directory is inside
    ``directory``, with its descendants; the number killed."""
    import psutil
    prefix = os.path.realpath(directory) + os.sep
    victims = []
    for proc in psutil.process_iter(["cwd", "uids"]):
        cwd = proc.info.get("cwd")
        if cwd and (cwd + os.sep).startswith(prefix) and proc.pid != os.getpid():
            try:
                victims += [proc, *proc.children(recursive=True)]
            except psutil.Error:
                victims.append(proc)
    for victim in victims:
        try:
            victim.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(victims, timeout=3)
    return len(victims)


def stop_process_group(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """Stop ``proc`` and its process group: SIGTERM, after ``grace`` s SIGKILL,
    then every process left working under its ``lfm_workdir`` (if it has one)."""
    for sig, timeout in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    # the worker runs each task in a process group of its own; after a crash of the
    # worker they would outlive it: find them by their working directory
    workdir = getattr(proc, "lfm_workdir", None)
    if workdir:
        kill_processes_under(workdir)
    deadline = time.time() + 2
    while time.time() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)


class LocalWorkers:
    """The local workers of one backend: one ``work_queue_worker`` per size in
    ``sizes`` (cores, memory MB, disk MB), connected to ``localhost:port`` with
    the manager's ``password_file``, each working in a directory of its own
    under ``staging``.

    A worker that exits while they run (its idle ``--timeout=3600``, a kill,
    a crash) is started again, with a warning, unless :class:`Restarts` gives
    it up. Once every worker is given up and ``connected()`` says no other
    worker is connected, ``on_lost(reason)`` is called (each second while that
    lasts): the backend then fails what is outstanding and what comes.
    """

    def __init__(self, sizes: list[dict[str, float]], staging: str, password_file: str | None,
                 on_lost: Callable[[str], None], connected: Callable[[], bool]) -> None:
        self.sizes = sizes
        self.procs: list[subprocess.Popen] = []
        self._staging = staging
        self._password_file = password_file
        self._on_lost = on_lost
        self._connected = connected
        self._lock = threading.Lock()
        self._closed = False
        self._port: int | None = None

    def start(self, port: int) -> None:
        """Start a worker of each size, and the watcher that starts them again."""
        self._port = port
        for size in self.sizes:
            self.procs.append(self.start_one(size))
        if self.sizes:
            threading.Thread(target=self._watch, name="lfm-wq-workers", daemon=True).start()

    def start_one(self, size: Mapping[str, float]) -> subprocess.Popen:
        """Start one worker of ``size``; its working directory is ``.lfm_workdir``."""
        workdir = tempfile.mkdtemp(prefix="worker-", dir=self._staging)
        command = worker_argv(["localhost", str(self._port)], size, workdir=workdir,
                              options=("--parent-death", "--timeout=3600"),
                              password_file=self._password_file)
        # its own session: at shutdown the worker and the tasks it started go together
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        proc.lfm_workdir = workdir
        return proc

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers (each leads its own process group)."""
        return [p.pid for p in self.procs]

    def close(self) -> None:
        """Start no worker again from now on (the backend is shutting down)."""
        with self._lock:
            self._closed = True

    def stop(self) -> None:
        """:meth:`close`, then stop every worker with the tasks it runs."""
        self.close()
        for proc in self.procs:
            stop_process_group(proc)
        self.procs.clear()

    def _watch(self) -> None:
        slots = [Restarts() for _ in self.procs]
        given_up: set[int] = set()
        last = None   # the last exit code seen
        while not self._closed:
            time.sleep(1.0)
            for i, proc in enumerate(list(self.procs)):
                code = proc.poll()
                if code is None or i in given_up or self._closed:
                    continue
                last = code
                size = ", ".join(f"{r} {v:g}" for r, v in self.sizes[i].items())
                if not slots[i].again(time.monotonic()):
                    given_up.add(i)
                    log.warning("lfm: local Work Queue worker %d (%s) exited with code %s within %g s of its "
                                "start, %d times in a row: not starting it again", i, size, code, QUICK_EXIT,
                                MAX_QUICK_EXITS)
                    continue
                log.warning("lfm: local Work Queue worker %d (%s) exited with code %s; starting a new one",
                            i, size, code)
                try:
                    new = self.start_one(self.sizes[i])
                except Exception as exc:   # e.g. the staging directory removed by a shutdown meanwhile
                    if not self._closed:
                        log.warning("lfm: could not start local Work Queue worker %d again: %s", i, exc)
                        given_up.add(i)
                    continue
                with self._lock:
                    closed = self._closed
                    if not closed:
                        self.procs[i] = new
                if closed:
                    stop_process_group(new)
            if given_up and len(given_up) == len(slots) and not self._connected():
                self._on_lost(f"the local Work Queue workers keep exiting right after they start "
                              f"(the last with code {last}): no worker is left to run the task")


__all__ = ["LocalWorkers", "MAX_QUICK_EXITS", "QUICK_EXIT", "Restarts", "kill_processes_under",
           "stop_process_group"]
