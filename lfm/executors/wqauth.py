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

Defence in depth when the manager reads a worker's outcome file (the runner
writes it with :func:`pack_outcome`, :func:`load_outcome` reads it):

``LFM-OUTCOME 1 TOKEN N\n`` then N bytes of *envelope* (status, host,
traceback, resources, exceeded, granted, imports: a Python literal of plain
values, read without pickle) then the pickle of the rest (the call's value or
exception). Before that pickle is loaded the manager checks, in this order:
the file's size against the output limit (:func:`output_limit_bytes`); the
token, a per-task HMAC of the task's key under a secret of the manager
(:func:`task_token`, given to the task in ``LFM_OUTCOME_TOKEN``): only someone
who received this very task can produce it; the envelope's structure and
types; its host against the worker Work Queue says ran the task. Only then is
the pickle loaded, which can run code: see the README's trust boundary.
"""
from __future__ import annotations

import os
import stat

from lfm.checks import positive

# the worker-side runner may import this module: no typing/collections at run time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

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
    check_password_choice(password, password_file)
    if password_file is not None:
        return user_password_file(password_file)
    return new_password_file(directory) if password else None


def check_password_choice(password: bool, password_file: str | os.PathLike | None,
                          file_option: str = "password_file") -> None:
    """Refuse a ``password`` that is not a bool, and ``password=False`` with a
    password file (``file_option``: the file's parameter name in messages)."""
    if not isinstance(password, bool):
        raise TypeError(f"password must be True or False, got {password!r} "
                        f"(give a file of your own as {file_option}=)")
    if password_file is not None and not password:
        raise ValueError(f"password=False contradicts {file_option}=: give one or the other")


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


# ---- outcome files ----------------------------------------------------------------------
#: environment variable that carries a task's token to its runner
TOKEN_ENV = "LFM_OUTCOME_TOKEN"
MAGIC = b"LFM-OUTCOME"
VERSION = b"1"
#: envelope keys and their checks; everything else of a record is pickled
PLAIN_KEYS = ("status", "host", "traceback", "resources", "exceeded", "granted", "imports")
STATUSES = ("ok", "exhausted", "error")
#: the output limit when neither max_output_mb nor a memory label says (MB)
DEFAULT_MAX_OUTPUT_MB = 8192.0
#: headroom of the automatic output limit over twice the memory label (MB)
OUTPUT_SLACK_MB = 256.0
MB = 1024 * 1024


class RefusedOutcome(Exception):
    """The manager refused a worker's outcome file before unpickling it (too
    large, another task's token, malformed, from another host)."""


def new_secret() -> bytes:
    """A manager's secret for :func:`task_token` (never leaves this machine)."""
    import secrets
    return secrets.token_bytes(32)


def task_token(secret: bytes, key: str) -> str:
    """The token of the task ``key``: HMAC-SHA256 under the manager's secret (hex)."""
    import hashlib
    import hmac
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def output_limit_bytes(max_output_mb: float | None, label: Mapping[str, float],
                       largest_memory: float | None = None) -> int | None:
    """The largest outcome file accepted for an attempt labelled ``label``, in
    bytes (None: no limit). ``max_output_mb`` given: that many MB (``inf``: no
    limit). Default: twice the memory label plus 256 MB (the result lived in
    the call's memory, which the label bounds), else twice ``largest_memory``
    (the largest worker's MB) plus 256 MB, else 8192 MB."""
    if max_output_mb is not None:
        return None if max_output_mb == float("inf") else int(max_output_mb * MB)
    memory = label.get("memory") or largest_memory
    if memory:
        return int((2 * float(memory) + OUTPUT_SLACK_MB) * MB)
    return int(DEFAULT_MAX_OUTPUT_MB * MB)


def check_max_output_mb(value: float | None) -> float | None:
    """``max_output_mb`` validated: None, or a number > 0 (MB; inf for no limit)."""
    if value is None:
        return None
    return positive(value, "max_output_mb", unit="MB", allow_inf=True)


def pack_outcome(record: Mapping[str, Any], dumps: Callable[[Any], bytes]) -> list[bytes]:
    """The runner's outcome file as chunks: header, envelope, ``dumps`` of the
    rest. The token comes from ``LFM_OUTCOME_TOKEN`` (``-`` without one)."""
    token = os.environ.get(TOKEN_ENV) or "-"
    plain = {k: record[k] for k in PLAIN_KEYS if k in record}
    envelope = repr(plain).encode("utf-8", "backslashreplace")
    body = dumps({k: v for k, v in record.items() if k not in plain})
    header = b" ".join((MAGIC, VERSION, token.encode("ascii", "replace"), b"%d\n" % len(envelope)))
    return [header + envelope, body]


def load_outcome(path: str, *, token: str | None = None, host: str | None = None,
                 max_bytes: int | None = None) -> dict[str, Any]:
    """The record in the outcome file ``path``, checked as the module says;
    ``token``/``host``/``max_bytes`` None skip that check. Raises
    :class:`RefusedOutcome` (nothing unpickled) or the pickle's own errors."""
    import pickle
    size = os.path.getsize(path)
    if max_bytes is not None and size > max_bytes:
        raise RefusedOutcome(f"the outcome file is {size / MB:.1f} MB, over the limit of "
                             f"{max_bytes / MB:.0f} MB for this call (max_output_mb: default twice the "
                             "memory label + 256 MB); raise max_output_mb= if such a result is real")
    with open(path, "rb") as f:
        line = f.readline(256)
        fields = line.split(b" ")
        if len(fields) != 4 or fields[0] != MAGIC or not line.endswith(b"\n"):
            raise RefusedOutcome(f"not an lfm outcome file (header {line[:80]!r})")
        if fields[1] != VERSION:
            raise RefusedOutcome(f"outcome format {fields[1]!r} is not {VERSION!r}: the worker runs "
                                 "another lfm version")
        if token is not None:
            import hmac
            if not hmac.compare_digest(fields[2], token.encode()):
                raise RefusedOutcome("the outcome carries another token: it is not the output of "
                                     "the task this manager sent")
        try:
            length = int(fields[3])
        except ValueError:
            raise RefusedOutcome(f"bad envelope length {fields[3]!r}") from None
        if not 0 <= length <= size - len(line):
            raise RefusedOutcome(f"envelope length {length} does not fit the {size}-byte file")
        envelope = check_envelope(_plain_literal(f.read(length)))
        if host and envelope.get("host") and not same_host(host, envelope["host"]):
            raise RefusedOutcome(f"the outcome says it ran on {envelope['host']!r}, but Work Queue "
                                 f"sent the task to {host!r}")
        # the trust boundary: an authenticated worker's output for this task
        rest = pickle.load(f)
    if not isinstance(rest, dict) or not all(isinstance(k, str) for k in rest):
        raise RefusedOutcome(f"the outcome's pickled part is a {type(rest).__name__}, not a dict")
    overlap = sorted(set(rest) & set(PLAIN_KEYS))
    if overlap:
        raise RefusedOutcome(f"the outcome's pickled part repeats envelope keys {overlap}")
    error = rest.get("error")
    if error is not None and not isinstance(error, BaseException):
        raise RefusedOutcome(f"the outcome's error is a {type(error).__name__}, not an exception")
    if (envelope["status"] == "ok") != (error is None):
        raise RefusedOutcome(f"status {envelope['status']!r} with error {error!r}")
    return {**envelope, **rest}


def same_host(reported: str, claimed: str) -> bool:
    """Whether Work Queue's host name for a worker and the runner's own name
    (``os.uname().nodename``) are the same machine (short names compared)."""
    return reported == claimed or reported.split(".")[0] == claimed.split(".")[0]


def check_envelope(envelope: Any) -> dict[str, Any]:
    """``envelope`` if it has the outcome envelope's structure and types."""
    if not isinstance(envelope, dict):
        raise RefusedOutcome(f"the outcome's envelope is a {type(envelope).__name__}, not a dict")
    unknown = sorted(map(repr, set(envelope) - set(PLAIN_KEYS)))
    if unknown:
        raise RefusedOutcome(f"unknown keys {', '.join(unknown)} in the outcome's envelope")
    if envelope.get("status") not in STATUSES:
        raise RefusedOutcome(f"outcome status {envelope.get('status')!r} is none of {STATUSES}")
    if not isinstance(envelope.get("host", ""), str):
        raise RefusedOutcome("the outcome's host is not a string")
    if not isinstance(envelope.get("traceback"), (str, type(None))):
        raise RefusedOutcome("the outcome's traceback is not a string")
    for key in ("resources", "exceeded", "granted"):
        value = envelope.get(key) or {}
        if not (isinstance(value, dict) and all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                for k, v in value.items())):
            raise RefusedOutcome(f"the outcome's {key} is not a mapping of names to numbers")
    imports = envelope.get("imports") or {}
    if not (isinstance(imports, dict) and all(
            isinstance(k, str) and isinstance(v, (str, type(None))) for k, v in imports.items())):
        raise RefusedOutcome("the outcome's imports are not a mapping of module names to files")
    return envelope


def _plain_literal(data: bytes) -> Any:
    """A Python literal of plain values (str, numbers incl. nan/inf, bool,
    None, dict, list, tuple as list) evaluated without running anything."""
    import ast
    try:
        tree = ast.parse(data.decode("utf-8"), mode="eval")
        return _plain(tree.body)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError,
            UnicodeDecodeError) as exc:
        raise RefusedOutcome(f"the outcome's envelope is not a plain literal: {exc}") from None


def _plain(node: Any) -> Any:
    import ast
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_plain(k): _plain(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_plain(e) for e in node.elts]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _plain(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value
    if isinstance(node, ast.Name) and node.id in ("nan", "inf"):
        return float(node.id)
    raise ValueError(f"{type(node).__name__} is not a plain value")


def _logger():
    import logging
    return logging.getLogger("lfm.executors.workqueue")
