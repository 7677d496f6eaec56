"""Monitoring an external command line (``lfm run``, shell apps, task runners)."""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from lfm.monitor import isolated
from lfm.monitor.disk import check_workdir
from lfm.monitor.limits import validate_limits
from lfm.resources import Resources


def spawn_and_wait(argv: list[str], cwd: str | None, env: Mapping[str, str] | None) -> int:
    """Run ``argv`` as a child of the current process and wait for it; returns
    its return code as :mod:`subprocess` does (negative: killed by that signal).
    Runs inside the monitor's call process, which is a subreaper, so the
    command's orphaned descendants are reaped (and measured) there too."""
    import subprocess  # here: the Work Queue runner imports lfm.monitor, not this
    if env is not None and "TMPDIR" in os.environ:
        env = {"TMPDIR": os.environ["TMPDIR"], **env}  # the call's scratch, unless env sets one
    proc = subprocess.Popen(argv, cwd=cwd, env=None if env is None else dict(env))
    _, status, _ = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode


def run_command(argv: list[str], *, limits: Mapping[str, float] | None = None,
                cwd: str | None = None, env: Mapping[str, str] | None = None,
                callback: Callable[[dict], Any] | None = None, interval: float = 1.0,
                keep_snapshots: bool = False, workdir: str | os.PathLike | None = None
                ) -> tuple[int, Resources]:
    """Run the command line ``argv`` and measure its whole process tree.

    Returns ``(returncode, Resources)``; the return code is as :mod:`subprocess`
    gives it (negative for a signal). The resources have the meaning described in
    :mod:`lfm.monitor.isolated`, for the command and its descendants only (lfm's
    own helper process is not counted). stdin/stdout/stderr are the caller's.
    ``disk`` as for a call: the command runs with a fresh scratch directory as
    ``TMPDIR`` (unless ``env`` sets ``TMPDIR``), removed afterwards, and
    ``disk`` is its peak occupancy, or that of ``workdir`` when given (the
    scratch directory is then made inside it). ``cwd`` is where the command
    runs (default: here), independent of ``workdir``.

    Raises ``ResourceExhaustion`` when a limit is exceeded (the tree is killed),
    ``FileNotFoundError``/``PermissionError`` when the command cannot be started,
    ``ValueError`` for bad limits or an empty ``argv``.
    """
    if isinstance(argv, str) or not argv or not all(isinstance(a, (str, os.PathLike)) for a in argv):
        raise ValueError(f"argv must be a non-empty list of strings, got {argv!r}")
    argv = [os.fspath(a) for a in argv]
    limits = validate_limits(limits)
    workdir = check_workdir(workdir)
    job = {"fn": spawn_and_wait, "args": (argv, cwd, env), "kwargs": {}}
    return isolated.execute(job, label=f"command {argv[0]!r}", limits=limits,
                            include_root=False, callback=callback, interval=interval,
                            keep_snapshots=keep_snapshots, workdir=workdir)
