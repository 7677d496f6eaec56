"""A real single-node Slurm for tests: ``munged``, ``slurmctld`` and ``slurmd``
(Debian's slurm-wlm and munge) started as root on this host, each with its own
configuration, sockets, state and logs in a temporary directory, and stopped
again (jobs cancelled, daemons and job steps killed) when the test is done.

``with single_node_slurm(directory) as slurm:`` exports ``SLURM_CONF`` so that
``sbatch``, ``squeue`` and ``scancel`` (and Parsl's ``SlurmProvider``) talk to
this cluster; ``slurm.partition`` names its partition. :func:`why_not` says why
this machine cannot run it (not root, a program missing), or None.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
MUNGE_KEY = "/etc/munge/munge.key"
START_TIMEOUT = 60.0


def why_not() -> str | None:
    """Why a single-node Slurm cannot be started here, or None."""
    if os.geteuid() != 0:
        return "starting slurmd and slurmctld needs root"
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if missing:
        return f"{', '.join(missing)} not found (apt-get install slurm-wlm munge)"
    if not os.path.exists(MUNGE_KEY):
        return f"no munge key at {MUNGE_KEY} (apt-get install munge makes one)"
    return None


@dataclass
class Slurm:
    directory: str
    conf: str
    partition: str = "lfmtest"
    node: str = ""
    procs: list[subprocess.Popen] = field(default_factory=list)

    def run(self, *command: str, timeout: float = 20.0) -> str:
        """A Slurm client command against this cluster; its stdout."""
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "SLURM_CONF": self.conf})
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr}")
        return done.stdout

    def jobs(self) -> list[str]:
        """Ids of jobs not yet finished."""
        return self.run("squeue", "-h", "-o", "%i").split()

    def log(self, name: str) -> str:
        path = os.path.join(self.directory, f"{name}.log")
        return open(path, errors="replace").read() if os.path.exists(path) else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _config(directory: str, node: str, partition: str, socket_path: str) -> str:
    cpus = os.cpu_count() or 1
    memory = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 20 * 0.9)
    ctld, slurmd = _free_port(), _free_port()
    d = directory
    return "\n".join([
        "ClusterName=lfmtest", f"SlurmctldHost={node}", "SlurmUser=root", "SlurmdUser=root",
        f"SlurmctldPort={ctld}", f"SlurmdPort={slurmd}",
        "AuthType=auth/munge", "CredType=cred/munge",
        f"AuthInfo=socket={socket_path}",
        f"StateSaveLocation={d}/state", f"SlurmdSpoolDir={d}/spool",
        f"SlurmctldPidFile={d}/slurmctld.pid", f"SlurmdPidFile={d}/slurmd.pid",
        f"SlurmctldLogFile={d}/slurmctld.log", f"SlurmdLogFile={d}/slurmd.log",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory",
        "SchedulerType=sched/backfill", "ReturnToService=2", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none", "SlurmctldTimeout=30", "SlurmdTimeout=30",
        "InactiveLimit=0", "KillWait=5", "MinJobAge=5", "SlurmctldDebug=info", "SlurmdDebug=info",
        f"NodeName={node} CPUs={cpus} RealMemory={memory} State=UNKNOWN",
        f"PartitionName={partition} Nodes={node} Default=YES MaxTime=INFINITE State=UP",
        ""])


@contextlib.contextmanager
def single_node_slurm(directory: str) -> Iterator[Slurm]:
    """Start munged, slurmctld and slurmd (config in ``directory``); stop them at exit."""
    reason = why_not()
    if reason:
        raise RuntimeError(f"cannot start Slurm here: {reason}")
    directory = os.path.abspath(directory)
    for sub in ("state", "spool", "munge"):
        os.makedirs(os.path.join(directory, sub), exist_ok=True)
    node = socket.gethostname().split(".")[0]
    munge_socket = os.path.join(directory, "munge", "munge.socket")
    conf = os.path.join(directory, "slurm.conf")
    with open(conf, "w") as f:
        f.write(_config(directory, node, "lfmtest", munge_socket))
    slurm = Slurm(directory, conf, node=node)
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    try:
        m = os.path.join(directory, "munge")
        slurm.procs.append(_start(["munged", "--foreground", "--force", f"--socket={munge_socket}",
                                   f"--key-file={MUNGE_KEY}", f"--pid-file={m}/munged.pid",
                                   f"--log-file={m}/munged.log", f"--seed-file={m}/munged.seed"],
                                  directory, "munged"))
        _wait(lambda: os.path.exists(munge_socket), 15, "munged did not create its socket", slurm)
        slurm.procs.append(_start(["slurmctld", "-D", "-f", conf], directory, "slurmctld-out"))
        slurm.procs.append(_start(["slurmd", "-D", "-f", conf], directory, "slurmd-out"))
        _wait(lambda: _node_ready(slurm), START_TIMEOUT, "the Slurm node did not become idle", slurm)
        yield slurm
    finally:
        _stop(slurm)
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved


def _start(command: list[str], directory: str, name: str) -> subprocess.Popen:
    out = open(os.path.join(directory, f"{name}.stdout"), "wb")
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ})


def _node_ready(slurm: Slurm) -> bool:
    for proc in slurm.procs:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}; slurmctld log:\n"
                               f"{slurm.log('slurmctld')[-2000:]}\nslurmd log:\n"
                               f"{slurm.log('slurmd')[-2000:]}")
    try:
        states = slurm.run("sinfo", "-h", "-N", "-o", "%T", timeout=10).split()
    except (RuntimeError, subprocess.TimeoutExpired):
        return False
    return bool(states) and all(s.rstrip("*") in ("idle", "mixed", "allocated") for s in states)


def _wait(predicate, timeout: float, what: str, slurm: Slurm) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise RuntimeError(f"{what} within {timeout:.0f} s; slurmctld log:\n"
                       f"{slurm.log('slurmctld')[-2000:]}\nslurmd log:\n{slurm.log('slurmd')[-2000:]}")


def _stop(slurm: Slurm) -> None:
    """Cancel every job, then stop slurmd, slurmctld and munged (TERM, then KILL),
    and kill job steps (slurmstepd) this slurmd left."""
    with contextlib.suppress(Exception):
        if slurm.jobs():
            slurm.run("scancel", "--full", "-u", "root", timeout=10)
            _wait_quiet(slurm, 10)
    for proc in reversed(slurm.procs):
        _terminate(proc)
    _kill_stepds(slurm.directory)


def _wait_quiet(slurm: Slurm, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(Exception):
            if not slurm.jobs():
                return
        time.sleep(0.3)


def _terminate(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)


def _kill_stepds(directory: str) -> None:
    import psutil
    for proc in psutil.process_iter(["name", "cmdline", "environ"]):
        try:
            env = proc.info.get("environ") or {}
            if proc.info["name"] == "slurmstepd" or env.get("SLURM_CONF") == os.path.join(
                    directory, "slurm.conf"):
                if proc.info["name"] == "slurmstepd" or "SLURM_JOB_ID" in env:
                    for victim in [*proc.children(recursive=True), proc]:
                        with contextlib.suppress(psutil.Error):
                            victim.kill()
        except psutil.Error:
            continue
