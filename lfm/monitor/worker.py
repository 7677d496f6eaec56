"""The code that runs inside a call's own process (forked by the fork server).

It receives the call, runs it, accounts for everything the call started, and
sends back the outcome with the measurements that only the process itself can
take exactly: its own memory high-water mark, and the rusage of every
descendant it reaped (it is a child subreaper, so orphaned grandchildren come
back to it). Descendants still running when the call returns are killed: a call
leaves no process behind.
"""
from __future__ import annotations

import ctypes
import os
import pickle
import resource
import signal
import struct
import sys
import time

from _socket import socket as _socket

from lfm.checks import read_exactly
from lfm.monitor import procfs, wire
from lfm.monitor.reaping import reap_children
from lfm.monitor.disk import enter_scratch

# every Work Queue task imports this module: _socket, not socket (whose enums cost ~3 ms)
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36

try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - non-glibc platforms
    _prctl = None


def prctl(option: int, value: int) -> bool:
    """Call prctl(2); False when unavailable."""
    if _prctl is None:
        return False
    return _prctl(option, ctypes.c_ulong(value), 0, 0, 0) == 0


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


#: top-level modules never reported as a call's imports: lfm itself and what
#: its monitor needs in every call's process (wherever lfm runs, they are there)
NOT_IMPORTS = frozenset({"lfm", "cloudpickle", "__main__", "__mp_main__"})


def new_imports() -> dict[str, str | None]:
    """Top-level modules outside the standard library that this process
    imported since its interpreter first imported lfm (see
    :attr:`lfm.Resources.imports`): name -> ``__file__`` (None when it has
    none). One pass over ``sys.modules`` keys; ~20 µs for 500 modules."""
    import lfm
    base = lfm._STARTUP_MODULES
    stdlib = sys.stdlib_module_names
    found: dict[str, str | None] = {}
    modules = sys.modules
    for name in list(modules):
        if name in base:
            continue
        top = name.partition(".")[0]
        if top in found or top in stdlib or top in NOT_IMPORTS or top in base:
            continue
        module = modules.get(top)
        if module is None:
            continue  # a failed import leaves None behind
        found[top] = getattr(module, "__file__", None)
    return found


def _exception_outcome(exc: BaseException) -> dict:
    import traceback  # here: most calls never need it (its imports cost ~5 ms)
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    outcome = {"status": "error", "traceback": tb,
               "type": f"{type(exc).__module__}.{type(exc).__qualname__}", "message": str(exc)}
    if not isinstance(exc, Exception):  # SystemExit, KeyboardInterrupt, GeneratorExit...
        outcome["aborted"] = repr(exc)
        if isinstance(exc, SystemExit):
            code = exc.code
            outcome["exit_code"] = code if code is None or isinstance(code, (int, str)) else repr(code)
    try:
        exc.__traceback__ = None
        # pickled on its own: an exception that pickles but cannot be rebuilt in the
        # caller (an __init__ of other arguments than its args) must not take the
        # outcome's measurement and traceback with it (lfm.monitor.outcome.original)
        outcome["exception"] = wire.to_bytes(exc)
    except Exception:  # noqa: BLE001 - an exception that cannot travel: send its text
        pass
    return outcome


def serve(conn_fd: int, zygote_pid: int, job: dict | None = None) -> None:
    """Entry point of a call's process, right after the fork. Never returns.
    ``job``: the call, when the process was forked holding it (otherwise it is
    read from the socket)."""
    code = 0
    try:
        _serve(conn_fd, zygote_pid, job)
    except BaseException:  # noqa: BLE001 - report on stderr, the caller sees the exit code
        import traceback
        traceback.print_exc()
        code = 70
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        os._exit(code)


def prepare(zygote_pid: int, warm_up: bool = True) -> None:
    """Set up a freshly forked call process (before it is given a call): it dies
    with the fork server (or the process that forked it) and adopts its
    orphaned descendants. ``warm_up`` when the call will come later."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != zygote_pid:  # the fork server died before we could notice
        os._exit(71)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    if warm_up:
        _warm_up()


def _warm_up() -> None:
    """Walk the call path once with dummy data while no call is waiting: the
    copy-on-write faults it causes (hundreds of pages shared with the fork
    server) are then paid before the call, not during it."""
    try:
        job = wire.load(*_split(wire.dumps({"fn": len, "args": ("",), "kwargs": {}})))
        job["fn"](*job["args"], **job["kwargs"])
        procfs.read_io("self")
        procfs.read_status("self")
        _cpu(resource.RUSAGE_SELF)
        _cpu(resource.RUSAGE_CHILDREN)
        time.time()
        time.perf_counter()
        wire.frames(b"R", wire.dumps({"status": "ok", "result": None, "measured": {"x": 0.0}},
                                     by_reference=True))
        pickle.loads(pickle.dumps(sys.path))
    except Exception:  # noqa: BLE001 - only an optimisation
        pass


def _split(parts: list) -> tuple[bytearray, list]:
    frames = b"".join(bytes(c) for c in wire.frames(b"C", parts))
    body = bytearray(frames[wire.HEADER.size:])
    return body, []


def _serve(conn_fd: int, zygote_pid: int, job: dict | None) -> None:
    sock = _socket(fileno=conn_fd)
    sock.sendall(wire.small_frame(b"P", os.getpid()))
    if job is None:
        job = _receive(sock)
        if job is None:
            return
    _run(sock, job)


def _receive(sock: socket.socket) -> dict | None:
    """The call sent by the caller; None when there is none to run."""
    # the call: first the caller's stdio (as passed descriptors) with the size
    # of its sys.path, then sys.path, then the call itself
    import socket  # here: only calls from the fork server come this way
    try:
        head, stdio, _, _ = socket.recv_fds(sock, 4, 3)
    except OSError:
        return None
    if len(head) < 4:
        return None  # the caller went away without a call
    rest = read_exactly(sock.recv_into, 4 - len(head))
    if rest is None:
        return None
    head += rest
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
        os.close(fd)
    (size,) = struct.unpack("!I", head)
    path = read_exactly(sock.recv_into, size)
    if path is None:
        return None
    sys.path[:] = pickle.loads(path)
    message = wire.read_message(sock)
    if message is None:
        return None
    try:
        return wire.load(message[1], message[2])
    except BaseException as exc:  # noqa: BLE001
        outcome = _exception_outcome(exc)
        outcome["status"] = "load_error"
        outcome["imports"] = new_imports()
        wire.send(sock, wire.frames(b"R", wire.dumps(outcome, by_reference=True)))
        return None


def _run(sock: socket.socket, job: dict) -> None:
    """Run the call, measure it, send the outcome."""
    if job.get("cwd"):
        try:
            os.chdir(job["cwd"])
        except OSError:
            pass
    if job.get("env") is not None:
        os.environ.clear()
        os.environ.update(job["env"])
    if job.get("scratch"):
        enter_scratch(job["scratch"])
    fn = job["fn"]
    fn = getattr(fn, "__lfm_unwrapped__", fn)
    include_root = job.get("include_root", True)

    procfs.clear_refs()
    io0 = procfs.read_io("self") or {}
    cpu0 = _cpu(resource.RUSAGE_CHILDREN) + (_cpu(resource.RUSAGE_SELF) if include_root else 0.0)
    start = time.time()
    t0 = time.perf_counter()
    try:
        outcome = {"status": "ok", "result": fn(*job["args"], **job["kwargs"])}
    except BaseException as exc:  # noqa: BLE001 - every exception goes back to the caller
        outcome = _exception_outcome(exc)
    killed = reap_children()  # everything below this process is the call's
    wall = time.perf_counter() - t0
    end = time.time()
    cpu = _cpu(resource.RUSAGE_CHILDREN) + (_cpu(resource.RUSAGE_SELF) if include_root else 0.0)
    status = procfs.read_status("self") or {}
    io1 = procfs.read_io("self") or {}
    children_maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    outcome["imports"] = new_imports()
    outcome["measured"] = {
        "start": start, "end": end, "wall_time": wall, "cpu_time": max(0.0, cpu - cpu0),
        "self_hwm": status.get("hwm", 0.0) if include_root else 0.0,
        "spawner_hwm": status.get("hwm", 0.0),
        "self_vm_peak": status.get("vm_peak", 0.0) if include_root else 0.0,
        "children_maxrss": children_maxrss, "killed_at_end": killed,
        "bytes_read": max(0.0, io1.get("read", 0.0) - io0.get("read", 0.0)),
        "bytes_written": max(0.0, io1.get("written", 0.0) - io0.get("written", 0.0)),
    }
    try:
        parts = wire.dumps(outcome, by_reference=True)
    except Exception as exc:  # noqa: BLE001 - the result (or exception) cannot be pickled
        what = "result" if outcome["status"] == "ok" else "exception"
        value = outcome.get("result", outcome.get("exception"))
        outcome = {"status": "unpicklable", "what": what,
                   "message": f"{type(value).__name__} object: {type(exc).__name__}: {exc}",
                   "measured": outcome["measured"], "imports": outcome["imports"]}
        parts = wire.dumps(outcome, by_reference=True)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001
        pass
    wire.send(sock, wire.frames(b"R", parts))
