"""Reading the Linux ``/proc`` filesystem: per-process memory, CPU and I/O counters.

lfm's monitor is Linux-only: it relies on ``/proc/<pid>/{stat,status,io}``, the
kernel's per-process memory high-water mark (``VmHWM``) and its reset through
``/proc/<pid>/clear_refs``. Every reader returns ``None`` when the process is gone
or the file cannot be read, so a caller racing a process's exit never crashes.
"""
from __future__ import annotations

import os

from lfm.resources import MB

#: Clock ticks per second (unit of the CPU times in ``/proc/<pid>/stat``).
CLK_TCK: int = os.sysconf("SC_CLK_TCK")
#: Bytes per memory page (unit of ``rss`` in ``/proc/<pid>/stat``).
PAGE_SIZE: int = os.sysconf("SC_PAGE_SIZE")

_KB_PER_MB = MB // 1024


def _read(path: str, size: int = 4096) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_stat(pid: int | str) -> tuple[int, int, float, float, int] | None:
    """``(ppid, pgrp, own_cpu_s, reaped_children_cpu_s, starttime)`` of a
    process, or None.

    ``own_cpu_s`` is user + system time of the process itself; the second value is
    the user + system time of descendants it has already reaped (``cutime`` +
    ``cstime``), both in seconds. ``starttime`` (clock ticks after boot) tells
    a process from a later one given the same pid.
    """
    data = _read(f"/proc/{pid}/stat", 1024)
    if not data:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after it.
    fields = data[data.rfind(b")") + 2:].split()
    try:
        return (int(fields[1]), int(fields[2]),
                (int(fields[11]) + int(fields[12])) / CLK_TCK,
                (int(fields[13]) + int(fields[14])) / CLK_TCK, int(fields[19]))
    except (IndexError, ValueError):
        return None


def children(pid: int | str) -> set[int] | None:
    """Pids of the direct children of a process (from each of its threads'
    ``children`` file), or None where the kernel does not provide them."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    found: set[int] = set()
    for tid in tids:
        data = _read(f"/proc/{pid}/task/{tid}/children", 1 << 16)
        if data is None:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread ended meanwhile
            return None
        found.update(int(c) for c in data.split())
    return found


_STATUS_KEYS = {b"VmHWM": "hwm", b"VmRSS": "rss", b"VmPeak": "vm_peak", b"VmSize": "vm"}


def read_status(pid: int | str) -> dict[str, float] | None:
    """Memory figures of a process in MB: ``hwm`` (peak resident set since start or
    the last reset), ``rss`` (current resident), ``vm_peak``, ``vm`` (virtual).
    None when the process is gone; an empty dict for a zombie (no memory left)."""
    data = _read(f"/proc/{pid}/status", 8192)
    if data is None:
        return None
    values: dict[str, float] = {}
    for line in data.split(b"\n"):
        key, _, rest = line.partition(b":")
        name = _STATUS_KEYS.get(key)
        if name is not None:
            values[name] = int(rest.split()[0]) / _KB_PER_MB
            if len(values) == 4:
                break
    return values


def read_io(pid: int | str) -> dict[str, float] | None:
    """I/O counters of a process (and the children it reaped) in MB: ``read``
    (``rchar``: bytes passed to read()-like calls, from files, pipes, sockets)
    and ``written`` (``wchar``). None when unreadable. (The kernel's
    ``write_bytes`` is not read: a call's ``disk`` is the space its scratch
    area occupies, see :mod:`lfm.monitor.disk`.)"""
    data = _read(f"/proc/{pid}/io", 1024)
    if not data:
        return None
    raw: dict[bytes, int] = {}
    for line in data.split(b"\n"):
        key, _, rest = line.partition(b":")
        if rest:
            raw[key] = int(rest)
    try:
        return {"read": raw[b"rchar"] / MB, "written": raw[b"wchar"] / MB}
    except KeyError:
        return None


def clear_refs(pid: int | str = "self") -> bool:
    """Reset the memory high-water mark (``VmHWM``) of a process to its current
    resident size by writing ``5`` to ``/proc/<pid>/clear_refs``. Returns False
    when the kernel does not permit it (then ``VmHWM`` is the lifetime peak)."""
    try:
        fd = os.open(f"/proc/{pid}/clear_refs", os.O_WRONLY)
    except OSError:
        return False
    try:
        os.write(fd, b"5")
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def all_parents() -> dict[int, int]:
    """Map pid -> parent pid of every process visible in ``/proc``."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = read_stat(name)
            if stat is not None:
                parents[int(name)] = stat[0]
    return parents


#: How :func:`walk_down` found a tree: each process's children files, or (where
#: the kernel has none, CONFIG_PROC_CHILDREN unset) a scan of every process.
WALK_CHILDREN, WALK_SCAN = "children files", "/proc scan"


def walk_down(root: int) -> tuple[list[tuple[int, int]], str]:
    """Living descendants of ``root`` (not ``root`` itself) as ``(pid, parent
    pid)`` pairs, parents before their children, and the method used: walking
    down from ``root`` through ``/proc/PID/task/*/children`` (a few reads per
    process of the tree, whatever else runs on the machine), else
    :data:`WALK_SCAN` (``all_parents``: one read per process on the machine).
    A child subreaper's adopted orphans are its children, so they are found."""
    found: list[tuple[int, int]] = []
    seen = {root}
    stack = [root]
    while stack:
        parent = stack.pop()
        kids = children(parent)
        if kids is None:
            if os.path.exists(f"/proc/{parent}"):
                return descendants_by_scan(root), WALK_SCAN
            continue  # it ended meanwhile
        for child in kids:
            if child not in seen:
                seen.add(child)
                found.append((child, parent))
                stack.append(child)
    return found, WALK_CHILDREN


def descendants_by_scan(root: int) -> list[tuple[int, int]]:
    """:func:`walk_down`'s fallback: one ``stat`` read per process in ``/proc``."""
    by_parent: dict[int, list[int]] = {}
    for pid, ppid in all_parents().items():
        by_parent.setdefault(ppid, []).append(pid)
    found: list[tuple[int, int]] = []
    seen = {root}
    stack = [root]
    while stack:
        parent = stack.pop()
        for child in by_parent.get(parent, ()):
            if child not in seen:
                seen.add(child)
                found.append((child, parent))
                stack.append(child)
    return found


def child_pids(pid: int) -> set[int]:
    """Direct children of ``pid``: its children files, else a ``/proc`` scan."""
    kids = children(pid)
    if kids is None:
        kids = {p for p, ppid in all_parents().items() if ppid == pid}
    return kids
