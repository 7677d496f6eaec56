"""Work Queue authentication: the password every lfm manager requires.

Work Queue's password authentication is a mutual challenge-response over the
manager's TCP port (each side proves it holds the same file's contents, which
never cross the network): a worker without the password, or with another one,
is disconnected before it is sent anything, and a worker with the password
refuses a manager that does not hold it. Debian's build has no TLS, so the
traffic after that handshake (calls, arguments, results) is neither encrypted
nor integrity-protected: see the README's "Security" section.

:func:`manager_password` decides the password of one manager: a random one
made for it (the default), the user's own file, or none when the user said
``password=False`` (logged once as a warning naming the risk).
"""
from __future__ import annotations

import os
import stat

# the worker-side runner may import this module: no typing/collections at run time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

#: bytes of randomness in a generated password (written as hex)
PASSWORD_BYTES = 32
#: the name of a generated password file inside the run's staging directory
PASSWORD_NAME = "worker.password"

OPEN_MANAGER_WARNING = (
    "lfm: the Work Queue manager on port {port} accepts workers WITHOUT a password "
    "(password=False): any host that can reach that port can connect as a worker, "
    "be sent your calls and arguments, and return a crafted result that runs "
    "arbitrary code as you on this machine when lfm unpickles it")


class PasswordFile:
    """The password file of one manager. ``path`` is absolute; ``owned``: lfm
    made it (random, mode 0600) and :meth:`remove` deletes it, a user-supplied
    file is never deleted."""

    def __init__(self, path: str, owned: bool) -> None:
        self.path = path
        self.owned = owned

    def remove(self) -> None:
        """Delete the file if lfm made it (idempotent)."""
        if self.owned:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __repr__(self) -> str:
        return f"PasswordFile({self.path!r}, owned={self.owned})"


def new_password_file(directory: str) -> PasswordFile:
    """A fresh random password in ``directory`` (created 0600 from the first
    byte, never readable by anyone else; fails if the file exists)."""
    import secrets
    path = os.path.join(os.path.abspath(directory), PASSWORD_NAME)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, secrets.token_hex(PASSWORD_BYTES).encode() + b"\n")
    finally:
        os.close(fd)
    return PasswordFile(path, owned=True)


def user_password_file(path: str | os.PathLike) -> PasswordFile:
    """The user's own password file, checked: it exists, is a readable
    regular file and is not empty. A file that others can read still works,
    with a warning (anyone who reads it can join as a worker)."""
    path = os.path.abspath(os.fspath(path))
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"password_file {path!r} does not exist") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"password_file {path!r} is not a regular file")
    try:
        with open(path, "rb") as f:
            content = f.read(1)
    except PermissionError:
        raise PermissionError(f"password_file {path!r} is not readable by this user") from None
    if not content:
        raise ValueError(f"password_file {path!r} is empty: Work Queue needs a non-empty password")
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        _logger().warning("lfm: password_file %s has mode %o: other users of this machine can "
                          "read it and join your manager as a worker (chmod 600 it)",
                          path, stat.S_IMODE(info.st_mode))
    return PasswordFile(path, owned=False)


def manager_password(password: bool, password_file: str | os.PathLike | None,
                     directory: str) -> PasswordFile | None:
    """The password of a manager whose staging directory is ``directory``:
    ``password_file`` when given (kept at shutdown), else a new random one in
    ``directory`` (removed at shutdown), or None when ``password`` is False."""
    if not isinstance(password, bool):
        raise TypeError(f"password must be True or False, got {password!r} "
                        "(give a file of your own as password_file=)")
    if password_file is not None:
        if not password:
            raise ValueError("password=False contradicts password_file=: give one or the other")
        return user_password_file(password_file)
    return new_password_file(directory) if password else None


def warn_open_manager(port: int | None) -> None:
    """Log, once per manager, that it runs without a password and what that risks."""
    _logger().warning(OPEN_MANAGER_WARNING.format(port=port))


def worker_argv(address: list[str], size: Mapping[str, float] | None = None, *,
                workdir: str | None = None, options: Iterable[str] = (),
                password_file: str | None = None) -> list[str]:
    """``work_queue_worker`` with ``size``'s resources (cores, memory MB, disk MB;
    integers, any subset), ``--workdir``, ``options``, ``--password FILE`` when
    there is one, then ``address`` (``[host, port]`` or ``["-M", project]``)."""
    argv = ["work_queue_worker"]
    for resource in ("cores", "memory", "disk"):
        if size and resource in size:
            argv.append(f"--{resource}={int(size[resource])}")
    if workdir is not None:
        argv += ["--workdir", os.fspath(workdir)]
    if isinstance(options, str):
        raise TypeError(f"options must be a list of worker flags, not the string {options!r}")
    argv += [str(o) for o in options]
    if password_file:
        argv += ["--password", password_file]
    return argv + [str(a) for a in address]


def copy_hint(password_file: str | None) -> str:
    """What to tell a user who starts workers on other machines (text after
    the worker command; empty without a password)."""
    if not password_file:
        return "\n(this manager has no password: any host that can reach it can join)"
    import shlex
    import socket
    here, directory = socket.getfqdn(), os.path.dirname(password_file)
    return (f"\non another machine, first copy the password file there under the same path "
            f"(it stays readable only by you), e.g. from that machine:\n"
            f"  mkdir -p -m 700 {shlex.quote(directory)} && "
            f"scp -p {shlex.quote(here + ':' + password_file)} {shlex.quote(password_file)}")


def _logger():
    import logging
    return logging.getLogger("lfm.executors.workqueue")
