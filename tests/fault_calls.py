"""The calls of the fault suite (tests/test_faults.py). A module of its own that
imports nothing heavy: Work Queue workers and lfm's fork server import the
module a function lives in, for every task.

Every call takes ``mark`` first, a file path: it appends its own process id
and start time there (see :func:`note`) before doing anything else, so that
the test can check afterwards that no process of the call is left.
"""
import os
import signal
import sys
import time

MB = 2 ** 20


def note(mark):
    """Append ``"<pid> <start time in clock ticks>"`` of this process to ``mark``."""
    with open(f"/proc/{os.getpid()}/stat", "rb") as f:
        start = f.read().rsplit(b")", 1)[1].split()[19].decode()
    with open(mark, "a") as f:
        f.write(f"{os.getpid()} {start}\n")


def returns(mark, value):
    note(mark)
    return value


def exits(mark, code):
    note(mark)
    sys.exit(code)


def argparse_error(mark):
    """What a command-line tool run as a function does with bad arguments."""
    import argparse
    note(mark)
    parser = argparse.ArgumentParser(prog="simulate")
    parser.add_argument("--steps", type=int, required=True)
    parser.parse_args(["--steps", "many"])


def interrupted(mark):
    note(mark)
    raise KeyboardInterrupt("pressed inside the call")


def generator_exit(mark):
    note(mark)
    raise GeneratorExit()


def hard_exit(mark, status):
    note(mark)
    sys.stdout.flush()
    os._exit(status)


def kills_itself(mark, signum):
    note(mark)
    os.kill(os.getpid(), signum)
    time.sleep(30)  # never reached


def ignores_sigterm(mark, seconds):
    """Ignore SIGTERM and sleep ``seconds`` s: only SIGKILL ends it."""
    note(mark)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    deadline = time.time() + seconds
    while time.time() < deadline:
        time.sleep(0.05)
    return "overslept"


def takes_anything(mark, value):
    note(mark)
    return "ran"


def unpicklable_result(mark):
    import threading
    note(mark)
    return threading.Lock()


def pattern(mb):
    """``mb`` MB of a known, position-dependent byte pattern."""
    block = bytes(range(256)) * (MB // 256)
    return block * int(mb)


def big_result(mark, mb):
    note(mark)
    return pattern(mb)


def worker_only_exception(mark):
    """Raise an exception whose class lives in a module only the call's side
    has (written to a fresh temporary directory): the caller cannot unpickle it."""
    import importlib
    import tempfile
    note(mark)
    where = tempfile.mkdtemp(prefix="fault-module-")
    with open(os.path.join(where, "worker_only_errors.py"), "w") as f:
        f.write("class WorkerOnlyError(Exception):\n    pass\n")
    sys.path.insert(0, where)
    module = importlib.import_module("worker_only_errors")
    raise module.WorkerOnlyError("raised where its class lives")


class TwoArgumentError(Exception):
    """Pickles, but its default unpickling calls ``__init__`` with one argument."""

    def __init__(self, what, why):
        super().__init__(f"{what}: {why}")
        self.what, self.why = what, why


def unloadable_exception(mark):
    note(mark)
    raise TwoArgumentError("simulate", "pickles but cannot be unpickled")


class Unloadable:
    """A result that pickles but whose unpickling fails."""

    def __reduce__(self):
        return (_refuse, ("this result refuses to be unpickled",))


def _refuse(message):
    raise ValueError(message)


def unloadable_result(mark):
    note(mark)
    return Unloadable()


def huge_message(mark, mb):
    note(mark)
    raise ValueError("x" * int(mb * MB))


def closes_stdio(mark):
    note(mark)
    sys.stdout.close()
    sys.stderr.close()
    os.close(1)
    os.close(2)
    return "closed"


def _owned_by_the_call(path):
    """True only for a directory that is provably this call's own: lfm's
    per-call scratch directory (``lfm-call-...``) or a Work Queue task's
    sandbox (it holds the runner's ``in.pkl``). Never the caller's directory."""
    path = os.path.realpath(path)
    if os.path.basename(path).startswith("lfm-call-"):
        return True
    return os.path.isfile(os.path.join(path, "in.pkl")) and "/worker-" in path


def deletes_its_directories(mark):
    """Leave its working directory and remove it and its scratch directory
    (``TMPDIR``), each only when it is the call's own (see
    :func:`_owned_by_the_call`)."""
    import shutil
    import tempfile
    note(mark)
    owned = [p for p in (os.getcwd(), tempfile.gettempdir()) if _owned_by_the_call(p)]
    os.chdir("/")
    for path in owned:
        shutil.rmtree(path, ignore_errors=True)
    return "gone"


def daemonizes(mark, seconds):
    """Start a daemon by double fork and ``setsid``, which would live
    ``seconds`` s, and return at once; the daemon notes itself in ``mark``."""
    note(mark)
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                note(mark)
                os.write(ready_w, b"1")
                time.sleep(seconds)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    os.read(ready_r, 1)
    return "daemon started"


def hold(mark, mb, seconds=0.0):
    """Touch ``mb`` MB and keep it ``seconds`` s; return ``mb``."""
    note(mark)
    block = b"\1" * int(mb * MB)
    time.sleep(seconds)
    del block
    return mb


def together(mark, n, timeout=60.0):
    """Note itself, then wait until ``n`` calls have noted themselves in
    ``mark``: returns ``n`` when they all ran at the same time, 0 otherwise."""
    note(mark)
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(mark) as f:
            if sum(1 for line in f if line.strip()) >= n:
                return n
        time.sleep(0.05)
    return 0


def wait_for(mark, path, timeout=60.0):
    """Run until the file ``path`` exists (the test's signal), at most
    ``timeout`` s; return True if it appeared."""
    note(mark)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False
