"""``lfm run [--limits memory=100,wall_time=5] [--interval S] [--workdir DIR] [--json-out FILE] -- CMD ARGS``

Runs the command line, measures its whole process tree, and prints one JSON
object (after the command's own output, or into ``--json-out FILE``):

``command`` (list), ``status`` (``ok``, ``exhausted`` or ``error``),
``exit_status`` (the command's, or null), ``signal`` (when killed by one),
``exceeded`` and ``limits`` (resource -> limit), ``method``, ``error`` (text),
and the resources with their unit in the key: ``memory_MB``,
``virtual_memory_MB``, ``disk_MB``, ``bytes_read_MB``, ``bytes_written_MB``,
``cpu_time_s``, ``wall_time_s``, ``start_s``, ``end_s`` (s since the epoch),
``cores``, ``total_processes``. MB are 2**20 bytes. ``disk_MB`` is the peak
space occupied in the command's scratch directory (a fresh ``TMPDIR``,
removed afterwards) or in ``--workdir DIR`` when given.

Exit status: the command's own; 128 + N when it was killed by signal N (as
shells report it); :data:`EXHAUSTED_STATUS` (124) when a limit was exceeded and
the command killed; 127 when the command does not exist, 126 when it cannot be
executed; 2 for bad ``lfm run`` arguments.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping

from lfm.checks import positive, writable_later
from lfm.monitor import run_command, validate_limits
from lfm.resources import UNITS, ResourceExhaustion, Resources

#: Exit status of ``lfm run`` when the command exceeded a limit and was killed.
EXHAUSTED_STATUS = 124


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limits", default="", metavar="NAME=VALUE,...",
                        help="kill the command when it exceeds one of these (memory, "
                             "virtual_memory, disk in MB; wall_time in s; cores)")
    parser.add_argument("--interval", type=float, default=1.0, metavar="S",
                        help="seconds between snapshots (with --snapshots)")
    parser.add_argument("--snapshots", action="store_true",
                        help="include the periodic snapshots in the JSON")
    parser.add_argument("--workdir", metavar="DIR",
                        help="measure DIR's occupancy as the command's disk (default: a fresh "
                             "scratch directory, the command's TMPDIR, removed afterwards)")
    parser.add_argument("--json-out", metavar="FILE",
                        help="write the JSON to FILE instead of standard output")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ARGS",
                        help="the command line to run")


def parse_limits(text: str) -> dict[str, float]:
    """``"memory=100,wall_time=5"`` -> ``{"memory": 100.0, "wall_time": 5.0}``;
    ValueError naming the bad item."""
    limits: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"bad limit {item!r}: expected NAME=VALUE, e.g. memory=100")
        try:
            limits[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"bad limit {item!r}: {value!r} is not a number") from None
    return validate_limits(limits)


def keyed(resources: Mapping[str, float]) -> dict[str, float]:
    """Resource values with their unit in the key (``memory_MB``, ``wall_time_s``)."""
    out = {}
    for name, value in resources.items():
        unit = UNITS.get(name, "")
        suffix = "_MB" if unit == "MB" else "_s" if unit.startswith("s") else ""
        out[name + suffix] = value
    return out


def main(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        print("lfm run: no command given (usage: lfm run [options] -- CMD ARGS)", file=sys.stderr)
        return 2
    try:
        limits = parse_limits(args.limits)
    except ValueError as exc:
        print(f"lfm run: --limits: {exc}", file=sys.stderr)
        return 2
    try:
        positive(args.interval, "--interval", unit="s")
        if args.json_out:   # before the command runs, not when its report is written
            writable_later(args.json_out, "--json-out")
    except ValueError as exc:
        print(f"lfm run: {exc}", file=sys.stderr)
        return 2
    if args.workdir is not None and not os.path.isdir(args.workdir):
        print(f"lfm run: --workdir {args.workdir!r} is not an existing directory", file=sys.stderr)
        return 2
    report: dict = {"command": cmd, "limits": limits}
    res: Resources | None = None
    try:
        code, res = run_command(cmd, limits=limits, interval=args.interval,
                                keep_snapshots=args.snapshots, workdir=args.workdir)
    except ResourceExhaustion as exc:
        res = exc.resources
        report.update(status="exhausted", exit_status=None, exceeded=exc.exceeded, error=str(exc))
        status = EXHAUSTED_STATUS
    except (FileNotFoundError, PermissionError) as exc:
        report.update(status="error", exit_status=None, error=f"{type(exc).__name__}: {exc}")
        status = 127 if isinstance(exc, FileNotFoundError) else 126
        print(f"lfm run: cannot run {cmd[0]!r}: {exc.strerror or exc}", file=sys.stderr)
    else:
        report.update(status="ok" if code == 0 else "error", exit_status=code)
        if code < 0:
            report.update(exit_status=None, signal=-code)
        status = 128 - code if code < 0 else code
    if res is not None:
        report["method"] = res.method
        report.update(keyed(res))
        if args.snapshots:
            report["snapshots"] = res.snapshots
    text = json.dumps(report, indent=2)
    if args.json_out:
        try:
            with open(args.json_out, "w") as f:
                f.write(text + "\n")
            return status
        except OSError as exc:   # the measurement is not lost: it goes to standard output instead
            print(f"lfm run: --json-out: cannot write {args.json_out!r} ({exc.strerror or exc}); "
                  f"the report follows on standard output", file=sys.stderr)
    sys.stdout.flush()
    print(text)
    return status
