"""``include_python=True``: pack the interpreter itself, relocatably.

CPython finds its standard library relative to its executable (it looks for
``../lib/pythonX.Y/os.py`` from the binary's directory), so a copy of

- the real binary (``bin/pythonX.Y``, also as ``bin/python3``),
- the shared libraries it and the standard library's extension modules
  (``lib-dynload``) need, ``libpythonX.Y.so`` included, except the C
  library's own (glibc: ``libc``, ``libm``, ``libpthread``, ``libdl``,
  ``librt``, ``libutil``, ``libresolv``, the loader), into ``lib/``,
- the standard library (``lib/pythonX.Y`` without ``site-packages``, the
  test suite, IDLE, tkinter, turtledemo, ensurepip, ``config-*``, bytecode)

runs from any directory when ``lib/`` is on ``LD_LIBRARY_PATH`` (the worker
side sets it; a ``RUNPATH`` baked into the binary yields to it; a ``RPATH``
would not, and is refused). The worker then needs only a Linux of the same
architecture with a glibc at least as new as this one's, and ``sh``, ``tar``,
``gzip``, ``flock``, ``date`` for the bootstrap (:data:`BOOT`) that unpacks the
package before there is any Python. :func:`why_not` says precisely why this
interpreter cannot be packed, when it cannot.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig

#: glibc's libraries: the worker's own are used
GLIBC = ("linux-vdso.so", "ld-linux", "libc.so", "libm.so", "libpthread.so", "libdl.so", "librt.so",
         "libutil.so", "libresolv.so", "libmvec.so")
#: parts of the standard library no call needs
SKIP = {"site-packages", "dist-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip",
        "__pycache__", "lib2to3", "pydoc_data"}


class PythonNotRelocatable(RuntimeError):
    """This interpreter cannot be packed; the message says why."""


def _executable() -> str:
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def why_not() -> str | None:
    """None when this interpreter can be packed, else the precise reason."""
    if sys.implementation.name != "cpython":
        return f"{sys.implementation.name} is not CPython: lfm only knows how CPython finds its library"
    if not sys.platform.startswith("linux"):
        return f"platform {sys.platform}: lfm lists shared libraries with ldd (Linux only)"
    if shutil.which("ldd") is None:
        return "ldd is not installed: cannot list the interpreter's shared libraries"
    exe = _executable()
    stdlib = os.path.realpath(sysconfig.get_path("stdlib"))
    minor = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    if os.path.basename(stdlib) != minor or \
            os.path.dirname(os.path.dirname(stdlib)) != os.path.dirname(os.path.dirname(exe)):
        return (f"the standard library {stdlib} is not at ../lib/{minor} from the executable {exe}, "
                "where a relocated CPython looks for it")
    dynamic = subprocess.run(["readelf", "-d", exe], capture_output=True, text=True) \
        if shutil.which("readelf") else None
    if dynamic is not None and re.search(r"\(RPATH\)", dynamic.stdout):
        return (f"{exe} has an RPATH, which LD_LIBRARY_PATH cannot override: the copy would load "
                "the original libpython")
    return None


def _needed(path: str) -> dict[str, str]:
    """soname -> resolved file of the non-glibc libraries ``path`` needs (ldd)."""
    proc = subprocess.run(["ldd", path], capture_output=True, text=True)
    out = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"\s*(\S+)\s+=>\s+(\S+)", line)
        if not match or match.group(2) == "not":
            continue
        soname, resolved = match.groups()
        if not soname.startswith(GLIBC):
            out[soname] = resolved
    return out


def python_members() -> list[tuple[str, str]]:
    """``(path inside python/, file on disk)`` of this interpreter (see the
    module docstring); raises :class:`PythonNotRelocatable` with the reason."""
    reason = why_not()
    if reason:
        raise PythonNotRelocatable(f"include_python is impossible here: {reason}")
    exe = _executable()
    minor = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    stdlib = os.path.realpath(sysconfig.get_path("stdlib"))
    members = [(f"bin/{minor}", exe), ("bin/python3", exe)]
    libraries = _needed(exe)
    for root, dirs, files in os.walk(stdlib):
        dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.startswith("config-"))
        for f in sorted(files):
            if f.endswith((".pyc", ".pyo")):
                continue
            full = os.path.join(root, f)
            members.append((os.path.join("lib", minor, os.path.relpath(full, stdlib)), full))
            if f.endswith(".so"):
                libraries.update(_needed(full))
    for soname, path in sorted(libraries.items()):
        members.append((f"lib/{soname}", os.path.realpath(path)))
    return members


def check(directory: str) -> str:
    """Run the packed interpreter unpacked in ``directory`` (``python/`` in
    it) with an empty environment; its ``sys.prefix``, which must be there."""
    python = os.path.join(directory, "python", "bin", "python3")
    env = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": os.path.join(directory, "python", "lib")}
    proc = subprocess.run([python, "-c", "import sys, json, ssl, ctypes, decimal; print(sys.prefix)"],
                          capture_output=True, text=True, env=env, timeout=60)
    if proc.returncode != 0:
        raise PythonNotRelocatable(f"the packed interpreter does not start from {directory}: "
                                   f"{proc.stderr.strip()[-500:]}")
    return proc.stdout.strip()


#: worker-side bootstrap for a worker without Python (POSIX sh, tar, gzip,
#: flock): unpack like lfm.pack.unpack, then run its copy with the packed interpreter
BOOT = r"""#!/bin/sh
# lfm pack bootstrap: sh lfm-pack-boot.sh ENV.tar.gz -- COMMAND ...
set -e
archive=$1; shift; [ "$1" = "--" ] && shift
name=$(basename "$archive" .tar.gz)
if [ -n "$LFM_PACK_ROOT" ]; then root=$LFM_PACK_ROOT
elif [ -d ../cache ]; then root=$(cd .. && pwd)/lfm-envs
else root=${XDG_CACHE_HOME:-$HOME/.cache}/lfm/envs; fi
target=$root/$name
mkdir -p "$root"
if [ ! -e "$target/.lfm-complete" ]; then
    exec 9>"$root/$name.lock"
    flock 9
    if [ ! -e "$target/.lfm-complete" ]; then
        start=$(date +%s%N)
        rm -rf "$target" "$target.part$$"
        mkdir -p "$target.part$$"
        tar -xzf "$archive" -C "$target.part$$"
        : > "$target.part$$/.lfm-complete"
        mv "$target.part$$" "$target"
        end=$(date +%s%N)
        LFM_PACK_UNPACKED_MS=$(( (end - start) / 1000000 + 1 ))
        export LFM_PACK_UNPACKED_MS
    fi
    exec 9>&-
fi
LD_LIBRARY_PATH=$target/python/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
exec "$target/python/bin/python3" "$target/lfm-pack-run.py" "$archive" -- "$@"
"""
