"""Child Python programs that a test interrupts with SIGINT, as Ctrl-C would.

A process started in the background of a non-interactive shell inherits
SIGINT *ignored*, and Python then installs no KeyboardInterrupt handler: run
under such a pytest, the child would sleep through the test's SIGINT. So the
child's source starts by restoring Python's own handler, and a child that
outlives the test is killed and reaped (no zombie for later no-orphan checks).
"""
from __future__ import annotations

import os
import signal
import subprocess

RESTORE_SIGINT = "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"


def interruptible(source: str) -> str:
    """``source`` run with Python's default SIGINT handler, whatever it inherited."""
    return RESTORE_SIGINT + source


def kill_and_reap(proc: subprocess.Popen, group: bool = False) -> None:
    """SIGKILL ``proc`` (its process group when ``group``) if it still runs, and reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL) if group else proc.kill()
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
