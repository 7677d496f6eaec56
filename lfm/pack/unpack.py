"""Worker side: ``python unpack.py ENV.tar.gz -- COMMAND ...``.

Standard library only, and no lfm: a worker has neither until the package is
unpacked, so Work Queue sends this very file beside the package (both cached)
and runs it with the worker's bare Python. It

1. unpacks the package once per worker into ``ROOT/<package name without
   .tar.gz>/`` under an exclusive ``flock`` on ``ROOT/<name>.lock``: concurrent
   tasks on one worker wait for the first instead of racing, and an unpacking
   that died half-way (no ``.lfm-complete`` marker) is redone;
2. runs ``COMMAND`` in place of this process (``exec``) with the package's
   ``site/`` first on ``PYTHONPATH``, ``LFM_PACK_ENV`` set to the unpacked
   directory and, when the package holds an interpreter, its ``bin`` first on
   ``PATH``, its ``lib`` first on ``LD_LIBRARY_PATH`` and a leading ``python``/``python3`` of ``COMMAND`` replaced by it.

``ROOT``: ``$LFM_PACK_ROOT``; else, in a Work Queue task's sandbox (whose
parent holds the worker's ``cache``), ``lfm-envs`` beside that cache, so the
worker removes it with its workspace; else ``$XDG_CACHE_HOME/lfm/envs`` (``~/.cache/lfm/envs``).
It prints one line to stderr, ``lfm-pack: unpacked NAME in S s`` or
``lfm-pack: reused NAME``, and with ``$LFM_PACK_REPORT`` set writes the same
as JSON to that file (a task output the manager's side counts).
"""
import os
import sys

MARKER = ".lfm-complete"


def unpack_root(archive):
    explicit = os.environ.get("LFM_PACK_ROOT")
    if explicit:
        return explicit
    real = os.path.realpath(archive)
    if real != os.path.abspath(archive):  # a symbolic link into Work Queue's cache
        return os.path.join(os.path.dirname(os.path.dirname(real)), "lfm-envs")
    workspace = os.path.dirname(os.getcwd())
    if os.path.isdir(os.path.join(workspace, "cache")):  # a hard link: the task's sandbox
        return os.path.join(workspace, "lfm-envs")        # is beside the worker's cache
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lfm", "envs")


def unpack(archive, root=None):
    """The directory where ``archive`` is unpacked (unpacking it if needed),
    and the seconds spent unpacking (0.0 when it was already there)."""
    root = root or unpack_root(archive)
    name = os.path.basename(archive)
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if name.endswith(suffix):
            name = name[:-len(suffix)]
            break
    target = os.path.join(root, name)
    if os.path.exists(os.path.join(target, MARKER)):
        return target, 0.0
    import fcntl  # here: a task whose package is unpacked needs none of these
    import shutil
    import tarfile
    import time
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(target, MARKER)):
            return target, 0.0
        started = time.perf_counter()
        if os.path.exists(target):
            shutil.rmtree(target)  # a previous unpacking died half-way
        partial = f"{target}.part{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(archive, "r:*") as tar:
            # a package holds only regular files and directories under relative
            # names: checked here, once, which lets the extraction skip the data
            # filter's per-member path resolution (half the unpacking time)
            members = tar.getmembers()
            for member in members:
                parts = member.name.split("/")
                if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
                    raise SystemExit(f"lfm-pack: refusing member {member.name!r} of {archive}: "
                                     "not a plain file or directory under a relative name")
            if hasattr(tarfile, "fully_trusted_filter"):
                tar.extractall(partial, members=members, filter="fully_trusted")
            else:
                tar.extractall(partial, members=members)
        open(os.path.join(partial, MARKER), "w").close()
        os.rename(partial, target)
        return target, time.perf_counter() - started


def environment(target, env=None):
    """The environment variables of a command run inside the unpacked package."""
    env = dict(os.environ if env is None else env)
    site = os.path.join(target, "site")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (site, env.get("PYTHONPATH")) if p)
    env["LFM_PACK_ENV"] = target
    python_bin = os.path.join(target, "python", "bin")
    if os.path.isdir(python_bin):
        env["PATH"] = os.pathsep.join(p for p in (python_bin, env.get("PATH")) if p)
        lib = os.path.join(target, "python", "lib")
        if lib not in env.get("LD_LIBRARY_PATH", "").split(os.pathsep):
            env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (lib, env.get("LD_LIBRARY_PATH")) if p)
        env.pop("PYTHONHOME", None)
    env.pop("LFM_PACK_UNPACKED_MS", None)
    return env


def command_in(target, command):
    """``command``, with a leading ``python``/``python3[.X]`` replaced by the
    package's interpreter when it has one."""
    python = os.path.join(target, "python", "bin", "python3")
    first = os.path.basename(command[0]) if command else ""
    if os.path.exists(python) and (first == "python" or first.startswith("python3")):
        return [python, *command[1:]]
    return list(command)


USAGE = "usage: python unpack.py ENV.tar.gz -- COMMAND [ARG ...]"


def main(argv):
    if len(argv) < 3 or argv[1] != "--":
        print(USAGE, file=sys.stderr)
        return 2
    archive, command = argv[0], argv[2:]
    if not os.path.isfile(archive):
        print(f"lfm-pack: no package at {archive!r} on {os.uname().nodename}", file=sys.stderr)
        return 2
    import tarfile
    import zlib
    try:
        target, seconds = unpack(archive)
    except (tarfile.TarError, EOFError, zlib.error) as exc:   # not a package, or cut short (zlib: corrupted inside)
        print(f"lfm-pack: {archive!r} on {os.uname().nodename} is not a readable package (.tar.gz): "
              f"{str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    if not seconds and os.environ.get("LFM_PACK_UNPACKED_MS"):  # the sh bootstrap unpacked it
        seconds = float(os.environ["LFM_PACK_UNPACKED_MS"]) / 1000
    name = os.path.basename(archive)
    if seconds:
        print(f"lfm-pack: unpacked {name} in {seconds:.3f} s", file=sys.stderr, flush=True)
    else:
        print(f"lfm-pack: reused {name}", file=sys.stderr, flush=True)
    report = os.environ.get("LFM_PACK_REPORT")
    if report:  # the manager's side counts unpackings from it (a task output file)
        with open(report, "w") as f:
            f.write('{"unpack_time": %.6f, "host": "%s", "package": "%s"}'
                    % (seconds, os.uname().nodename.replace('"', ""), name.replace('"', "")))
    command = command_in(target, command)
    try:
        os.execvpe(command[0], command, environment(target))
    except OSError as exc:
        print(f"lfm-pack: cannot run {command[0]!r} on {os.uname().nodename}: {exc}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
