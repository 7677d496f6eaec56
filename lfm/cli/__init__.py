"""The ``lfm`` command line: ``lfm run``, ``lfm replay``, ``lfm demo``, ``lfm pack``.

Each sub-command lives in its own module of this package, which provides
``configure(parser)`` (add its arguments) and ``main(args) -> int`` (run it,
return the exit status).
"""
from __future__ import annotations

import argparse
import importlib
import sys
import warnings

#: sub-command -> (module, one-line help)
COMMANDS = {
    "run": ("lfm.cli.run", "monitor a command line and print its resources as JSON"),
    "replay": ("lfm.cli.replay", "replay traces through predictors and compare them"),
    "demo": ("lfm.cli.demo", "run the demonstration workflow"),
    "pack": ("lfm.cli.pack", "analyze, create and run software environment packages"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lfm", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        module.configure(sub)
        sub.set_defaults(_main=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_main", None):
        parser.print_help()
        return 2
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        # a command's user reads what happened, not which line of lfm noticed it
        print(f"lfm {args.command}: warning: {message}", file=file or sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            return int(args._main(args) or 0)
    except KeyboardInterrupt:
        print("lfm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
