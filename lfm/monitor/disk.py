"""Disk: the space a call's files occupy, and the call's own scratch directory.

``disk`` means what Work Queue means by it: the space occupied in the task's
own area (its sandbox), not the bytes it wrote. So rewriting a file does not
count twice, and deleting a file frees its space.

Readers (small, psutil-style; each result says which method produced it):

:func:`occupancy`
    walks a directory and sums the space its entries occupy: allocated blocks
    (``st_blocks * 512``, method ``"st_blocks"``) of every file, directory and
    symlink under it (the directory itself left out), a file with several hard
    links counted once (by ``(st_dev, st_ino)``), symlinks not followed, other
    mounts not entered. ``apparent=True`` sums ``st_size`` instead (method
    ``"st_size"``: a sparse file counts at its length, a 1-byte file as 1 byte
    instead of a 4 KB block). Works the same on tmpfs (``/dev/shm``), whose
    ``st_blocks`` count the pages a file holds, and on disk file systems
    (ext4, xfs: blocks reserved by delayed allocation included, so a file just
    written counts before it reaches the disk).

How a directory is walked: iteratively (a list of directories still to read,
no recursion, so any depth is fine), one :func:`os.scandir` per directory and
one ``lstat`` per entry; the memory it needs is the list of pending
directories and the set of multiply-linked inodes, never the list of files.
An entry that vanishes during the walk is skipped (it no longer occupies
space). Cost, measured on this machine (2 shared cores; ``python -m
lfm.monitor.disk 0,100,10000,100000 DIR /dev/shm``: 1 KB files, 10 per
sub-directory, inodes cached), about the same on ext4 and tmpfs:

=========  ==========  ==========
files      µs / walk   µs / file
=========  ==========  ==========
0          8           -
100        350         3.5
10,000     40,000      4
100,000    400,000     4
=========  ==========  ==========

so a scratch directory of a few files costs tens of µs a walk.

:class:`DiskSampler` is what a call's supervisor uses while the call runs:
it walks at most every ``min_interval`` seconds (the monitor's 50 ms sampling
grid), and when a walk gets expensive it walks less often, so that walking
takes at most ``duty`` (5 %) of one core: after a walk of ``w`` s the next one
waits ``max(min_interval, w / duty)`` (a directory of 100,000 files, ~0.4 s a
walk, is walked every 8 s). The peak is the largest occupancy seen by a walk,
the last one taken when the call has ended included: a file that lives
between two walks is missed (a lower bound, as Work Queue's own measurement
of a sandbox is).

Scratch directories: :func:`make_scratch` creates a fresh directory for one
call (in the caller's temporary directory, or inside ``workdir`` when one is
measured, so what the call puts there counts in it); the call's process
:func:`enter_scratch`\\ es it (``TMPDIR``, and ``tempfile.tempdir`` which
``tempfile`` may have cached); :func:`remove_scratch` removes it after the call.
"""
from __future__ import annotations

import os
import stat
import sys
import time

from lfm.resources import MB

#: Largest share of one core that walking a call's directory may take.
DUTY = 0.05
#: Prefix of every scratch directory lfm creates.
SCRATCH_PREFIX = "lfm-call-"

_S_ISDIR = stat.S_ISDIR


class Occupancy(tuple):
    """Result of :func:`occupancy`: ``bytes`` occupied, ``files`` and ``dirs``
    seen (directory itself excluded), ``errors`` (entries that could not be
    read, e.g. permission denied), ``seconds`` the walk took, ``method``
    (``"st_blocks"`` or ``"st_size"``)."""

    __slots__ = ()
    _fields = ("bytes", "files", "dirs", "errors", "seconds", "method")

    def __new__(cls, nbytes: int, files: int, dirs: int, errors: int, seconds: float,
                method: str) -> Occupancy:
        return tuple.__new__(cls, (nbytes, files, dirs, errors, seconds, method))

    bytes = property(lambda self: self[0])
    files = property(lambda self: self[1])
    dirs = property(lambda self: self[2])
    errors = property(lambda self: self[3])
    seconds = property(lambda self: self[4])
    method = property(lambda self: self[5])

    @property
    def mb(self) -> float:
        """``bytes`` in MB (2**20 bytes)."""
        return self[0] / MB

    def __repr__(self) -> str:
        return ("Occupancy(" + ", ".join(f"{k}={v!r}" for k, v in zip(self._fields, self)) + ")")


def occupancy(path: str | os.PathLike, *, apparent: bool = False) -> Occupancy:
    """Space occupied under the directory ``path`` (see the module doc for
    what counts and how it is walked). FileNotFoundError / NotADirectoryError
    when ``path`` is not a directory."""
    t0 = time.perf_counter()
    root = os.fspath(path)
    top_stat = os.stat(root)
    device = top_stat.st_dev
    if not _S_ISDIR(top_stat.st_mode):
        raise NotADirectoryError(f"disk occupancy needs a directory, got {root!r}")
    total = files = dirs = errors = 0
    linked: set[tuple[int, int]] = set()
    pending = [root]
    while pending:
        top = pending.pop()
        try:
            entries = os.scandir(top)
        except FileNotFoundError:
            continue  # removed since it was listed
        except OSError:
            errors += 1
            continue
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                except OSError:
                    errors += 1
                    continue
                if _S_ISDIR(st.st_mode):
                    if st.st_dev != device:
                        continue  # another file system mounted here: not this area's space
                    dirs += 1
                    pending.append(entry.path)
                else:
                    files += 1
                    if st.st_nlink > 1:
                        key = (st.st_dev, st.st_ino)
                        if key in linked:
                            continue
                        linked.add(key)
                total += st.st_size if apparent else st.st_blocks * 512
    return Occupancy(total, files, dirs, errors, time.perf_counter() - t0,
                     "st_size" if apparent else "st_blocks")


class DiskSampler:
    """Peak occupancy (MB) of ``path`` while a call runs, walked at a rate
    that adapts to the walk's cost (see the module doc).

    ``sample(now)`` walks when one is due and returns the latest occupancy
    (MB); ``final()`` walks now (after the call ended) and returns the peak.
    Attributes: ``peak`` (MB), ``last`` (MB), ``walks``, ``walk_seconds``
    (total time spent walking), ``method`` (``"st_blocks walk"``), ``path``.
    A directory that cannot be read counts as 0 MB (``errors`` counts it).
    """

    def __init__(self, path: str, *, min_interval: float = 0.05, duty: float = DUTY) -> None:
        self.path = path
        self.min_interval = float(min_interval)
        self.duty = float(duty)
        self.peak = self.last = 0.0
        self.walks = 0
        self.errors = 0
        self.walk_seconds = 0.0
        self.method = "st_blocks walk"
        self._next = 0.0

    def _walk(self) -> float:
        try:
            found = occupancy(self.path)
        except OSError:
            self.errors += 1
            return self.last
        self.walks += 1
        self.walk_seconds += found.seconds
        self.errors += found.errors
        self.last = found.mb
        self.peak = max(self.peak, self.last)
        self._next = time.monotonic() + max(self.min_interval, found.seconds / self.duty)
        return self.last

    def sample(self, now: float | None = None) -> float:
        """The occupancy in MB, walked afresh when a walk is due."""
        if (time.monotonic() if now is None else now) >= self._next:
            self._walk()
        return self.last

    def final(self) -> float:
        """Walk once more (the call has ended) and return the peak (MB)."""
        self._walk()
        return self.peak


def check_workdir(workdir: str | os.PathLike | None) -> str | None:
    """``workdir`` as an absolute path (None stays None); ValueError when it is
    not an existing directory (its occupancy is a call's ``disk``)."""
    if workdir is None:
        return None
    if not isinstance(workdir, (str, os.PathLike)):
        raise ValueError(f"workdir must be a path to an existing directory, got "
                         f"{type(workdir).__name__} {workdir!r}")
    path = os.path.abspath(os.fspath(workdir))
    if not os.path.isdir(path):
        why = "not a directory" if os.path.exists(path) else "no such directory"
        raise ValueError(f"workdir must be an existing directory (its occupancy is the call's "
                         f"disk), got {path!r}: {why}")
    return path


_counter = 0


def make_scratch(workdir: str | None = None) -> str:
    """Create a fresh, empty scratch directory (mode 0700) for one call and
    return its absolute path: inside ``workdir`` when given (so that what the
    call puts in it counts in ``workdir``'s occupancy), else in the caller's
    temporary directory (``tempfile.gettempdir()``: ``TMPDIR`` or ``/tmp``)."""
    global _counter
    if workdir is None:
        import tempfile  # here: the Work Queue runner always gives its sandbox
        base = tempfile.gettempdir()
    else:
        base = os.fspath(workdir)
    while True:
        _counter += 1
        path = os.path.join(os.path.abspath(base),
                            f"{SCRATCH_PREFIX}{os.getpid()}-{_counter}-{os.urandom(3).hex()}")
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def enter_scratch(path: str) -> None:
    """In the call's process: make ``path`` its temporary directory
    (``TMPDIR``, inherited by the commands it runs, and ``tempfile.tempdir``,
    which ``tempfile`` caches once it has been asked)."""
    os.environ["TMPDIR"] = path
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile.tempdir = path


def remove_scratch(path: str) -> None:
    """Remove a call's scratch directory and everything in it, iteratively
    (a tree of any depth; ``shutil.rmtree`` recurses), read-only or
    unreadable directories the call left included; errors are ignored (what
    cannot be removed stays). A symlink is removed, never followed."""
    if os.path.islink(path):
        _retry(os.unlink, path)
        return
    pending: list[tuple[str, bool]] = [(path, False)]
    while pending:
        top, emptied = pending.pop()
        if emptied:
            _retry(os.rmdir, top)
            continue
        entries = _retry(lambda d: list(os.scandir(d)), top, chmod=top)
        if entries is None:
            continue
        pending.append((top, True))
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                pending.append((entry.path, False))
            else:
                _retry(os.unlink, entry.path)


def _retry(func, target: str, chmod: str | None = None):
    """``func(target)``; after a PermissionError, once more with ``chmod``
    (default: ``target``'s directory) made accessible. None on failure."""
    try:
        return func(target)
    except PermissionError:
        try:
            os.chmod(chmod or os.path.dirname(target), 0o700)
            return func(target)
        except OSError:
            return None
    except OSError:
        return None


def _bench(n: int, base: str | None = None, repeat: int = 20) -> dict[str, float]:
    """µs per walk and per file of a directory of ``n`` 1 KB files (10 per
    sub-directory) under ``base`` (default: the temporary directory)."""
    import tempfile
    with tempfile.TemporaryDirectory(dir=base) as top:
        for i in range(n):
            sub = os.path.join(top, f"d{i // 10}")
            if i % 10 == 0:
                os.mkdir(sub)
            with open(os.path.join(sub, f"f{i}"), "wb") as f:
                f.write(b"x" * 1024)
        occupancy(top)
        times = sorted(occupancy(top).seconds for _ in range(repeat))
    walk = times[len(times) // 2] * 1e6
    return {"files": n, "us_per_walk": walk, "us_per_file": walk / n if n else 0.0}


if __name__ == "__main__":
    for where in (sys.argv[2:] or [None]):
        for count in (int(a) for a in sys.argv[1].split(",")) if len(sys.argv) > 1 else (0, 100, 10000):
            row = _bench(count, where)
            print(f"{where or 'tmp'}: {row['files']:>7} files  {row['us_per_walk']:>10.0f} us/walk"
                  f"  {row['us_per_file']:.2f} us/file")
