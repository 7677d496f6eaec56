"""The parent's side of the Work Queue manager process: starting it, and the
pipes to it (:mod:`lfm.executors.wqmanager` documents the messages).

Messages to the manager are queued (:meth:`ManagerChannel.send` never blocks
the caller on a full pipe) and written by one thread, ``lfm-wq-writer``; the
backend's reader thread iterates :meth:`ManagerChannel.messages`.
"""
from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

from lfm.executors.wqmanager import receive, send

#: seconds the manager has to exit after "stop" before it is killed
STOP_TIMEOUT = 5.0


class ManagerChannel:
    """One manager process: ``port`` (0 picks a free one), the catalog
    ``project_name``, Work Queue's ``debug_log`` file, the workers'
    ``password_file``, and ``watch_workers`` (report the connected workers
    even while no task is queued)."""

    def __init__(self, port: int, project_name: str | None = None, debug_log: str | None = None,
                 password_file: str | None = None, watch_workers: bool = False) -> None:
        command = [sys.executable, "-m", "lfm.executors.wqmanager", "--port", str(int(port))]
        if project_name:
            command += ["--name", project_name]
        if debug_log:
            command += ["--debug-log", debug_log]
        if password_file:
            command += ["--password-file", password_file]
        if watch_workers:
            command += ["--watch-workers"]
        self.command = command
        self.proc: subprocess.Popen | None = None
        self.outbox: queue.Queue = queue.Queue()

    def start(self) -> int:
        """Start the manager; its port once it listens. RuntimeError (with the
        manager's reason) when it did not start."""
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        first = receive(self.proc.stdout)
        if not first or first[0] != "started":
            self.proc.kill()
            self.proc.wait()
            detail = first[1] if first else "it exited without a word (see stderr above)"
            raise RuntimeError(f"the Work Queue manager did not start: {detail}")
        threading.Thread(target=self._write, name="lfm-wq-writer", daemon=True).start()
        return int(first[1])

    @property
    def pid(self) -> int | None:
        """The manager's process id (None before :meth:`start`)."""
        return self.proc.pid if self.proc is not None else None

    def send(self, message: Any) -> None:
        """Queue a message for the manager (dropped once it has gone)."""
        self.outbox.put(message)

    def messages(self) -> Iterator[Any]:
        """The manager's messages, until it exits or its output is unreadable."""
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            try:
                message = receive(self.proc.stdout)
            except Exception:
                return
            if message is None:
                return
            yield message

    def stop(self) -> None:
        """Ask the manager to stop; kill it after :data:`STOP_TIMEOUT` s."""
        self.send(("stop",))
        self.outbox.put(None)   # the writer's end
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _write(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        while True:
            message = self.outbox.get()
            if message is None:
                break
            try:
                send(self.proc.stdin, message)
            except (BrokenPipeError, ValueError, OSError):
                break
        try:
            self.proc.stdin.close()
        except OSError:
            pass
