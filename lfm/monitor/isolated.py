"""Isolated mode: run a call in its own process, forked from lfm's fork server
(or, with ``run_call(..., isolate="fork")``, straight from the caller: see
:class:`_DirectFork`; same measurements, limits and clean-up).

The caller's thread sends the call, then waits for the outcome while sampling the
call's process tree every :data:`~lfm.monitor.limits.SAMPLE_INTERVAL` seconds for
limits and snapshots. It reads as it waits, so a result of any size cannot
deadlock on a full pipe. Several threads may run calls concurrently: each call
has its own socket to its own process.

What the returned :class:`~lfm.Resources` mean in this mode:

``memory``
    peak resident memory (MB) of the call's process tree: the larger of (a) the
    call process's exact high-water mark (``VmHWM``, reset when the call starts)
    plus the largest peak of any descendant it reaped (``wait4`` rusage, so a
    child living 5 ms counts) and (b) the largest sum of high-water marks of the
    processes seen alive together by sampling (children running concurrently
    count as their sum). It includes the call process's interpreter (the fork
    server's few tens of MB) but never the caller's memory — except in
    ``"fork"`` mode, where the caller is the fork server and its (small)
    memory is the interpreter counted.
``virtual_memory``
    peak virtual size (MB): ``VmPeak`` of the call process or the largest
    sampled sum over the tree.
``cpu_time``, ``cores``
    user + system seconds of the call and every descendant; ``cores`` =
    ``cpu_time / wall_time``.
``bytes_read``, ``bytes_written``
    MB passed through read()/write()-like calls by the tree (``rchar``/``wchar``,
    files, pipes and sockets alike).
``disk``
    peak space (MB) occupied in the call's own scratch area, as Work Queue
    means a task's disk: every call gets a fresh, empty scratch directory
    (mode 0700, in the caller's ``TMPDIR`` or ``/tmp``), exported in the
    call's process as ``TMPDIR`` (and ``tempfile.tempdir``, so ``tempfile``
    and the commands the call runs use it), and removed after the call
    however it ended (returned, raised, killed, exited). With ``workdir=``
    the given directory is measured instead, whole (what was in it before
    the call included, as Work Queue counts a sandbox's input files), and
    the scratch directory is made inside it. The area is walked (allocated
    blocks, hard links once: see :mod:`lfm.monitor.disk`) on the 50 ms
    sampling grid, less often when a walk is costly, and once more after the
    call's processes are gone: a file rewritten counts once, a deleted file
    frees its space, and a file living between two walks is missed.
    ``bytes_written`` is the separate count of bytes written.
``total_processes``
    processes seen: the call process, descendants sampled alive, and those
    killed when the call returned (a child living between two samples is
    missed by this count, though not by ``memory``).

``imports`` (an attribute, :attr:`lfm.Resources.imports`)
    the top-level modules outside the standard library (and other than lfm and
    cloudpickle, which every call's process has) present in the call's process
    when it ends that its interpreter did not have before it first imported
    lfm: one pass over ``sys.modules`` in the call's process. With the fork
    server this includes the function's module and what it imports (the server
    imports it in advance), and also the modules the server imported for other
    functions' modules before (a superset, never a subset, of what the call
    needs). With ``isolate="fork"`` it includes everything the forking process
    imported after lfm: exact in a fresh process such as the Work Queue
    runner, which loads the call and then forks it.

A call that raises a ``BaseException`` that is no ``Exception`` is reported
as :class:`lfm.CallExited` (``SystemExit``) or :class:`lfm.CallAborted`
(``KeyboardInterrupt``, ``GeneratorExit``, ...), never re-raised in the caller;
a call process that exits without an outcome (``os._exit(n)``) is
:class:`lfm.CallExited` with ``code`` its exit status.

A limit of the kernel's accounting: the rusage of a child that ran another
program (``exec``) keeps the resident size its parent had when it forked. So a
reaped child's peak is added to the call process's own only when it exceeds
the call process's peak (it then is the child's own); a smaller child counts
when sampling saw it alive (it lived longer than a sampling interval). A
command (``run_command``) that ends before the first sample is reported with
at least lfm's ~15 MB helper image.
"""
from __future__ import annotations

import atexit
import importlib
import math
import os
import pickle
import select
import signal
import struct
import sys
import time
from _socket import MSG_DONTWAIT, MSG_PEEK, socketpair
from _thread import allocate_lock
from collections.abc import Callable, Mapping

from lfm.monitor import limits as limits_mod
from lfm.monitor import disk, procfs, wire, worker
from lfm.monitor.tree import CoresWindow, TreeSampler
from lfm.resources import (CallAborted, CallExited, CallKilled, MonitorError, RemoteTraceback,
                           ResourceExhaustion, Resources, SerializationError)

# the Work Queue runner imports this module in every task: keep typing,
# threading, pathlib and socket (its enums cost ~3 ms; _socket does for the
# direct fork) out of its imports
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from typing import Any

METHOD = "VmHWM+wait4+sampling"

#: Seconds to wait for a killed call's process to be reported dead.
KILL_GRACE = 10.0
#: Seconds to wait for a call's process to start (the fork server may be
#: importing the function's module) before the server is replaced.
START_TIMEOUT = 120.0


class _Zygote:
    """Handle on this process's fork server (see :mod:`lfm.monitor.zygote`)."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        import socket
        self.lock = allocate_lock()
        self.ctrl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        import subprocess  # here: a process that forks its calls directly never needs it
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
        code = (f"import sys; sys.path.insert(0, {root!r}); "
                f"from lfm.monitor.zygote import main; main({theirs.fileno()})")
        self.proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=[theirs.fileno()],
                                     stdin=subprocess.DEVNULL)
        theirs.close()
        self.sent_path: list[str] | None = None
        #: sockets of call processes forked in advance, waiting for a call
        self.ready: list[socket.socket] = []
        #: the environment the server started with (calls get it unless it changed)
        self.env = dict(os.environ)

    def alive(self) -> bool:
        return self.owner == os.getpid() and self.proc.poll() is None

    def _request(self, module: str) -> socket.socket:
        """Have the server fork a call process on a new socket (call with the
        lock held); the process sends its pid, then waits for a call."""
        import socket
        mine, theirs = socket.socketpair()
        try:
            path = list(sys.path)
            body = pickle.dumps((module, None if path == self.sent_path else path))
            socket.send_fds(self.ctrl, [body], [theirs.fileno()])
            self.sent_path = path
        except OSError:
            mine.close()
            raise
        finally:
            theirs.close()
        return mine

    def open_call(self, module: str, chunks: list) -> socket.socket | None:
        """Send the call (``chunks``) to a ready call process, with this
        thread's current stdin/stdout/stderr and ``sys.path``, without waiting;
        the process's pid is the first frame on the returned socket. A new
        process is requested for the next call, so a call does not wait for a
        fork. None if the fork server is gone."""
        with self.lock:
            conn = None
            while self.ready and conn is None:
                conn = self.ready.pop()
                if not _fresh(conn):
                    conn.close()
                    conn = None
            try:
                if conn is None:
                    conn = self._request(module)
                self.ready.append(self._request(module))
            except OSError:
                if conn is not None:
                    conn.close()
                return None
        _send_call(conn, chunks)
        return conn

    def reap(self, pid: int) -> None:
        """Nothing to do: the fork server reaps the call's process and reports
        how it ended in an ``X`` frame."""
        return None

    def close(self) -> None:
        if self.owner != os.getpid():
            return
        for conn in self.ready:
            conn.close()
        self.ctrl.close()
        import subprocess
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _send_call(conn: socket.socket, chunks: list) -> None:
    """Send a call process this thread's stdin/stdout/stderr, ``sys.path`` and
    the call (``chunks``)."""
    import socket
    header = pickle.dumps(sys.path)
    try:
        size = struct.pack("!I", len(header))
        try:
            socket.send_fds(conn, [size], [0, 1, 2])
        except OSError as exc:
            if isinstance(exc, (BrokenPipeError, ConnectionError)):
                raise
            socket.send_fds(conn, [size], [])  # stdio closed here: keep the server's
        conn.sendall(header)
        wire.send(conn, chunks)
    except OSError:
        pass  # the process died: the frames tell


class _DirectFork:
    """Forks each call's process straight from this process, which plays the
    fork server's part itself (it becomes a child subreaper, reaps the call's
    process and kills what the call left behind). Meant for a small, fresh,
    single-threaded process such as a Work Queue task's runner: it saves
    starting a second interpreter, but its own memory is shared with (and
    counted in) the call's process, as the fork server's is."""

    env = None  # the call's process inherits this process's environment

    def __init__(self) -> None:
        self.owner = os.getpid()
        worker.prctl(worker.PR_SET_CHILD_SUBREAPER, 1)
        #: call pid -> this process's children before that call started
        self.older: dict[int, set[int] | None] = {}

    def open_call(self, module: str, job: dict) -> socket.socket | None:  # noqa: ARG002
        """Fork the call's process holding ``job`` (nothing to pickle)."""
        mine, theirs = socketpair()
        parent = os.getpid()
        older = procfs.children(parent)
        pid = os.fork()
        if pid == 0:  # the call's process
            try:
                mine.close()
                os.setpgid(0, 0)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                worker.prepare(parent, warm_up=False)
            finally:
                worker.serve(theirs.detach(), parent, job)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass  # the child did it first (or already exited)
        theirs.close()
        self.older[pid] = older
        return mine

    def reap(self, pid: int) -> dict:
        """Wait for the call's process to end (it does right after its outcome,
        or was killed) and say how it ended, as the fork server's ``X`` frame."""
        older = self.older.pop(pid, None)
        try:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            # a zombie's pid (its group id) cannot be reused: the kill is safe
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            _, status, usage = os.wait4(pid, 0)
        except ChildProcessError:
            return {"status": 0, "cpu_time": 0.0, "maxrss": 0.0}
        if status != 0:
            # descendants of a call process that died abruptly came back to us:
            # kill our children that were not ours before the call (e.g. not a
            # fork server, nor the user's own)
            now = procfs.children(os.getpid())
            if now is None:  # no children files: our children, as /proc says
                me = os.getpid()
                now = {p for p, ppid in procfs.all_parents().items() if ppid == me}
            for orphan in now - (older or set()):
                try:
                    os.kill(orphan, signal.SIGKILL)
                    os.waitpid(orphan, 0)  # a killed process ends at once: no zombie left
                except OSError:
                    pass
        return {"status": status, "cpu_time": usage.ru_utime + usage.ru_stime,
                "maxrss": usage.ru_maxrss / 1024}


_direct: _DirectFork | None = None


def _get_spawner(direct: bool) -> _Zygote | _DirectFork:
    global _direct
    if not direct:
        return _get_zygote()
    if _direct is None or _direct.owner != os.getpid():
        _direct = _DirectFork()
    return _direct


_zygote: _Zygote | None = None
_zygote_lock = allocate_lock()


def _get_zygote(restart: bool = False) -> _Zygote:
    global _zygote
    with _zygote_lock:
        if _zygote is None or restart or not _zygote.alive():
            old, _zygote = _zygote, _Zygote()
            if old is not None and old.owner == os.getpid():
                old.close()
        return _zygote


def _after_fork_in_child() -> None:
    # a forked caller gets its own fork server on first use; the parent's
    # handle (and a lock another thread may have held) must not be touched
    global _zygote, _zygote_lock
    _zygote = None
    _zygote_lock = allocate_lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _shutdown() -> None:
    if _zygote is not None:
        _zygote.close()


def _fresh(conn: socket.socket) -> bool:
    """True unless a waiting call process is known to be dead (end of stream,
    or its exit already reported)."""
    try:
        data = conn.recv(1 << 16, MSG_PEEK | MSG_DONTWAIT)
    except BlockingIOError:
        return True  # nothing yet: its pid is still to come
    except OSError:
        return False
    if len(data) < wire.HEADER.size:
        return bool(data)
    kind, size = wire.HEADER.unpack_from(data)
    # alive: nothing after its pid frame (the server writes an exit frame after it)
    return kind == b"P" and len(data) <= wire.HEADER.size + size


def _open_call(module: str, call: Any, spawner: _Zygote | _DirectFork
               ) -> tuple[socket.socket, int, wire.FrameReader]:
    """Start the call (frames for the fork server's process, the job itself for
    a direct fork); returns its socket, pid and the reader holding any frame
    that came after the pid."""
    for attempt in range(2):
        if attempt and isinstance(spawner, _Zygote):
            spawner = _get_zygote(restart=True)  # a dead fork server is replaced once
        sock = spawner.open_call(module, call)
        if sock is None:
            continue
        reader = wire.FrameReader()
        sock.setblocking(True)
        deadline = time.monotonic() + START_TIMEOUT
        while not reader.messages and not reader.closed:
            if not select.select([sock], [], [], max(0.0, deadline - time.monotonic()))[0]:
                break  # a wedged fork server: replace it
            reader.read_from(sock)
        if reader.messages and reader.messages[0][0] == b"P":
            kind, body, buffers = reader.messages.pop(0)
            return sock, wire.load(body, buffers), reader
        sock.close()
    raise MonitorError("lfm could not start the call's process (its fork server died)")


def _culprit(job: dict, label: str) -> str:
    """Name the first part of a call that cannot be pickled."""
    candidates = [(f"the function {label}", job["fn"])]
    candidates += [(f"argument {i} ({type(a).__name__})", a) for i, a in enumerate(job["args"])]
    candidates += [(f"keyword argument {k!r} ({type(v).__name__})", v)
                   for k, v in job["kwargs"].items()]
    for what, value in candidates:
        try:
            wire.dumps(value)
        except Exception as exc:  # noqa: BLE001
            return f"{what}: {type(exc).__name__}: {exc}"
    return "the call"


def _kill(pid: int, sampler: TreeSampler) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    for other in sampler.alive:  # descendants that left the process group
        try:
            os.kill(other, signal.SIGKILL)
        except OSError:
            pass


def execute(job: dict, *, label: str, limits: Mapping[str, float], include_root: bool = True,
            callback: Callable[[dict], Any] | None = None, interval: float = 1.0,
            keep_snapshots: bool = False, direct: bool = False,
            workdir: str | None = None) -> tuple[Any, Resources]:
    """Run ``job`` (``fn``, ``args``, ``kwargs``) in a new process and return
    ``(result, Resources)``; raises like :func:`lfm.monitor.run_call`.
    ``direct``: fork that process from this one (see :class:`_DirectFork`)
    instead of from the fork server. ``workdir``: the directory whose
    occupancy is the call's ``disk`` (its scratch directory is made inside
    it); default: the scratch directory alone."""
    spawner = _get_spawner(direct)
    env = None if direct else dict(os.environ)
    scratch = disk.make_scratch(workdir)
    job = {**job, "cwd": None if direct else os.getcwd(), "scratch": scratch,
           "env": None if env == spawner.env else env, "include_root": include_root}
    try:
        if direct:
            call: Any = job  # the forked process holds it already
        else:
            try:
                call = wire.frames(b"C", wire.dumps(job))
            except Exception:  # noqa: BLE001
                raise SerializationError(f"cannot send {_culprit(job, label)}") from None
        return _supervise(job, call, spawner, disk.DiskSampler(workdir or scratch, min_interval=limits_mod.SAMPLE_INTERVAL), label=label,
                          limits=limits, include_root=include_root, callback=callback,
                          interval=interval, keep_snapshots=keep_snapshots, direct=direct)
    finally:
        disk.remove_scratch(scratch)


def _supervise(job: dict, call: Any, spawner: _Zygote | _DirectFork, disk_sampler: disk.DiskSampler,
               *, label: str, limits: Mapping[str, float], include_root: bool,
               callback: Callable[[dict], Any] | None, interval: float, keep_snapshots: bool,
               direct: bool) -> tuple[Any, Resources]:
    fn = job["fn"]
    module = getattr(getattr(fn, "__lfm_unwrapped__", fn), "__module__", None) or ""
    t0 = time.monotonic()
    started = time.time()
    sock, pid, reader = _open_call(module, call, spawner)
    del call
    sampler = TreeSampler(pid, include_root=include_root)
    ended: dict | None = None
    raw_outcome: tuple[bytearray, list[bytearray]] | None = None
    breached: dict[str, float] = {}
    killed_at: float | None = None
    snapshots: list[dict] = []
    want_snaps = callback is not None or keep_snapshots
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        deadline = t0 + limits["wall_time"] if "wall_time" in limits else math.inf
        cores_window = CoresWindow(limits_mod.CORES_WINDOW) if "cores" in limits else None
        next_sample = t0 + limits_mod.SAMPLE_INTERVAL
        next_snap = t0 + interval
        last_snap = (0.0, 0.0)
        while ended is None:
            now = time.monotonic()
            if killed_at is not None and now - killed_at > KILL_GRACE:
                break
            wake = min(next_sample, deadline if killed_at is None else math.inf)
            # frames may already be waiting (read along with the pid)
            if reader.messages or poller.poll(max(0.0, (wake - now) * 1000.0)):
                reader.read_from(sock)
                for kind, body, buffers in reader.messages:
                    if kind == b"R":
                        raw_outcome = (body, buffers)
                    elif kind == b"X":
                        ended = wire.load(body, buffers)
                reader.messages.clear()
                if ended is not None or (raw_outcome is not None and killed_at is None):
                    # the outcome holds the exact measurement: no need to wait
                    # for the process's exit, which the fork server handles
                    break
                if reader.closed:
                    break
            now = time.monotonic()
            if killed_at is None and now >= deadline:
                breached["wall_time"] = limits["wall_time"]
            if now >= next_sample:
                next_sample = now + limits_mod.SAMPLE_INTERVAL
                if killed_at is None:
                    snap = sampler.sample()
                    snap["disk"] = disk_sampler.sample(now)
                    breached.update(_breaches(snap, limits, cores_window, now))
                    if want_snaps and now >= next_snap:
                        elapsed = now - t0
                        dt = elapsed - last_snap[0]
                        snap["cores"] = max(0.0, (snap["cpu_time"] - last_snap[1]) / dt) if dt > 0 else 0.0
                        snap["time"] = elapsed
                        snap["final"] = False
                        last_snap = (elapsed, snap["cpu_time"])
                        next_snap = now + interval
                        if keep_snapshots:
                            snapshots.append(snap)
                        if callback is not None:
                            callback(snap)
            if breached and killed_at is None:
                killed_at = time.monotonic()
                _kill(pid, sampler)
    finally:
        if ended is None and killed_at is None and raw_outcome is None:
            _kill(pid, sampler)  # interrupted, or a callback raised
        sock.close()
        if direct:
            ended = spawner.reap(pid)
    stopped = time.monotonic()

    outcome = None
    if raw_outcome is not None and not breached:
        try:
            outcome = wire.load(*raw_outcome)
        except Exception as exc:  # noqa: BLE001
            raise SerializationError(
                f"the outcome of {label} could not be loaded in the caller: "
                f"{type(exc).__name__}: {exc}") from None
    res = _resources(outcome, ended, sampler, include_root, started, stopped - t0,
                     disk_sampler.final())
    if want_snaps:
        final = {**res.to_dict(), "time": res.get("wall_time", 0.0), "final": True}
        if keep_snapshots:
            snapshots.append(final)
            res.snapshots = snapshots
        if callback is not None:
            callback(final)
    return _finish(outcome, ended, breached, res, limits, label)


def _breaches(snap: dict, limits: Mapping[str, float], cores_window: CoresWindow | None,
              now: float) -> dict[str, float]:
    found = {}
    for name, key in (("memory", "memory_peak"), ("virtual_memory", "virtual_memory"),
                      ("disk", "disk")):
        if name in limits and snap[key] > limits[name]:
            found[name] = limits[name]
    if cores_window is not None:
        cores = cores_window.add(now, snap["cpu_time"])
        if cores is not None and cores > limits["cores"] + limits_mod.CORES_TOLERANCE:
            found["cores"] = limits["cores"]
    return found


def _resources(outcome: dict | None, ended: dict | None, sampler: TreeSampler,
               include_root: bool, started: float, elapsed: float, disk_mb: float) -> Resources:
    measured = outcome.get("measured") if outcome else None
    values: dict[str, float] = {}
    if measured:
        sampled_memory, sampled_virtual = sampler.peaks_until(measured["end"])
        children = measured["children_maxrss"]
        if children > measured.get("spawner_hwm", 0.0):
            kernel_peak = measured["self_hwm"] + children
        else:
            # the largest reaped child may be nothing but the image of its parent,
            # which the kernel's rusage carries across exec(): trust it only when
            # sampling never saw the tree
            kernel_peak = measured["self_hwm"] or (0.0 if sampled_memory else children)
        values.update(
            memory=max(sampled_memory, kernel_peak),
            virtual_memory=max(sampled_virtual, measured["self_vm_peak"]) or None,
            cpu_time=measured["cpu_time"], wall_time=measured["wall_time"],
            bytes_read=measured["bytes_read"], bytes_written=measured["bytes_written"],
            disk=disk_mb, start=measured["start"], end=measured["end"],
            total_processes=max(len(sampler.pids),
                                int(include_root) + measured["killed_at_end"], 1))
    else:
        values.update(memory=max(sampler.peak_memory, ended["maxrss"] if ended else 0.0),
                      wall_time=elapsed, start=started, end=started + elapsed,
                      bytes_read=sampler.io["read"], bytes_written=sampler.io["written"],
                      disk=disk_mb, total_processes=max(len(sampler.pids), 1))
        if sampler.peak_virtual:
            values["virtual_memory"] = sampler.peak_virtual
        cpu = sampler.cpu_time
        if ended is not None and include_root:
            cpu = max(cpu, ended["cpu_time"])
        values["cpu_time"] = cpu
    if values["wall_time"] > 0:
        values["cores"] = values["cpu_time"] / values["wall_time"]
    return Resources(values, method=METHOD, imports=(outcome or {}).get("imports"))


def _finish(outcome: dict | None, ended: dict | None, breached: dict[str, float],
            res: Resources, limits: Mapping[str, float], label: str) -> tuple[Any, Resources]:
    if breached:
        raise ResourceExhaustion(
            f"{label} exceeded its limits ({limits_mod.describe(breached, res)}) and was killed",
            resources=res, exceeded=breached, limits=limits)
    if outcome is None:
        raise _killed(ended, res, label)
    status = outcome["status"]
    if status == "ok":
        late = limits_mod.exceeded(res, limits)
        if late:
            raise ResourceExhaustion(
                f"{label} exceeded its limits ({limits_mod.describe(late, res)}); "
                "found by the exact measurement after it finished",
                resources=res, exceeded=late, limits=limits)
        return outcome["result"], res
    if status == "unpicklable":
        exc = SerializationError(f"cannot send the {outcome['what']} of {label} back to the "
                                 f"caller: {outcome['message']}")
    elif status == "load_error":
        exc = SerializationError(f"the call to {label} could not be loaded in its process: "
                                 f"{outcome['type']}: {outcome['message']}")
    elif "aborted" in outcome:
        exc = _aborted(outcome, res, label)
    else:
        exc = outcome.get("exception")
        if exc is None:
            exc = _rebuild_exception(outcome["type"], outcome["message"])
    try:
        exc.lfm_resources = res
    except AttributeError:
        pass
    raise exc from RemoteTraceback(outcome.get("traceback", ""))


def _aborted(outcome: dict, res: Resources, label: str) -> CallAborted:
    """The lfm error for a call that raised a BaseException that is no
    Exception (never re-raised here: it would stop the caller's program)."""
    original = outcome.get("exception")
    if outcome["type"] == "builtins.SystemExit" or isinstance(original, SystemExit):
        code = outcome.get("exit_code")
        return CallExited(f"{label} called sys.exit({code!r})", code=code, exception=original,
                          resources=res)
    return CallAborted(f"{label} raised {outcome['aborted']}", exception=original, resources=res)


def _rebuild_exception(qualified: str, message: str) -> BaseException:
    """An exception of the original type when it can be built from its message."""
    module, _, name = qualified.rpartition(".")
    try:
        cls = getattr(sys.modules.get(module) or importlib.import_module(module), name)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            return cls(message)
    except Exception:  # noqa: BLE001
        pass
    return MonitorError(f"{qualified}: {message}")


def _killed(ended: dict | None, res: Resources, label: str) -> CallKilled | CallExited:
    if ended is None:
        return CallKilled(f"{label}: the monitor lost contact with the call's process "
                          "(its fork server died)", resources=res)
    status = ended["status"]
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        hint = " (as the kernel OOM killer does when memory runs out)" if sig == signal.SIGKILL else ""
        return CallKilled(f"{label} was killed by {name}{hint} after "
                          f"{res.get('wall_time', 0):.3g} s, at {res.get('memory', 0):.4g} MB",
                          signal=sig, resources=res)
    code = os.waitstatus_to_exitcode(status)
    return CallExited(f"{label} exited with status {code} without returning (os._exit or "
                      f"similar), after {res.get('wall_time', 0):.3g} s", code=code, resources=res)
