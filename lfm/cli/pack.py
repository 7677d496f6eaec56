"""``lfm pack``: software environments, as Poncho's analyze / create / run do.

- ``lfm pack analyze SCRIPT|MODULE[:FUNCTION] [--run [ARG ...]]`` prints the
  spec (Poncho's JSON, or ``--format requirements``): from a static scan of
  the imports by default, or with ``--run`` from what a real run imported
  (the script run with ARGs, or ``FUNCTION(*ARGs)`` with each ARG read as
  JSON when it parses); stderr says which.
- ``lfm pack create SPEC OUT.tar.gz`` builds the package, offline, from this
  environment's installed files; prints its size (MB) and build time (s).
- ``lfm pack run ENV.tar.gz -- COMMAND ...`` unpacks it once (``--root``, or
  ``$LFM_PACK_ROOT``, default ``~/.cache/lfm/envs``) and runs COMMAND inside.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

#: run in a child interpreter: execute the target, then list what it imported
_PROBE = r"""
import json, runpy, sys
out, kind, target, args = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
from lfm.pack.record import current_imports
before = set(sys.modules)
if kind == "script":
    sys.argv = [target, *args]
    sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(target)))
    try:
        runpy.run_path(target, run_name="__main__")
    except SystemExit:
        pass
else:
    import importlib
    module_name, _, function = target.partition(":")
    fn = importlib.import_module(module_name)
    for part in function.split(".") if function else ():
        fn = getattr(fn, part)
    if function:
        fn(*args)
imports = current_imports()
with open(out, "w") as f:
    json.dump(imports, f)
"""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="pack_command", metavar="ACTION")
    analyze = sub.add_parser("analyze", help="print the spec of a script or MODULE:FUNCTION")
    analyze.add_argument("target", metavar="SCRIPT|MODULE:FUNCTION")
    analyze.add_argument("--run", nargs=argparse.REMAINDER, metavar="ARG", default=None,
                         help="measure a real run (script arguments, or the function's "
                              "arguments as JSON values) instead of a static scan")
    analyze.add_argument("--format", choices=("poncho", "requirements"), default="poncho")
    analyze.add_argument("--extra-pkgs", nargs="*", default=[], metavar="DIST",
                         help="installed distributions to add")
    analyze.add_argument("-o", "--output", help="write the spec here instead of stdout")
    create = sub.add_parser("create", help="build the package of a spec")
    create.add_argument("spec", metavar="SPEC")
    create.add_argument("out", metavar="OUT.tar.gz")
    create.add_argument("--include-python", action="store_true",
                        help="pack this interpreter too (see lfm.pack.python)")
    run = sub.add_parser("run", help="run a command inside a package")
    run.add_argument("package", metavar="ENV.tar.gz")
    run.add_argument("--root", help="where to unpack (default $LFM_PACK_ROOT or ~/.cache/lfm/envs)")
    run.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    parser.set_defaults(_pack_parser=parser)


def main(args: argparse.Namespace) -> int:
    action = getattr(args, "pack_command", None)
    if action is None:
        args._pack_parser.print_help()
        return 2
    try:
        return {"analyze": _analyze, "create": _create, "run": _run}[action](args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"lfm pack {action}: {exc}", file=sys.stderr)
        return 2


def _analyze(args: argparse.Namespace) -> int:
    from lfm.pack.deps import spec_from_imports
    from lfm.pack.scan import scan_target
    if args.run is None:
        imports, what = scan_target(args.target)
        source = "static scan"
    else:
        imports, what = measure(args.target, args.run), args.target
        source = "run"
    spec = spec_from_imports(imports, extra_pkgs=args.extra_pkgs, source=source)
    text = spec.to_json() if args.format == "poncho" else spec.to_requirements()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    how = "a run" if source == "run" else "a static scan"
    print(f"lfm pack analyze: spec of {what} from {how}: {spec.summary()}", file=sys.stderr)
    for note in spec.notes:
        print(f"lfm pack analyze: note: {note}", file=sys.stderr)
    return 0


def measure(target: str, run_args: list[str]) -> dict[str, str | None]:
    """The imports of one real run of a script or MODULE:FUNCTION, in a child
    interpreter of this environment."""
    run_args = [a for a in run_args if a != "--"] if run_args[:1] == ["--"] else list(run_args)
    is_script = os.path.exists(target) or target.endswith(".py")
    if is_script and not os.path.isfile(target):
        raise FileNotFoundError(f"{target}: no such script")
    if not is_script:
        values = []
        for a in run_args:
            try:
                values.append(json.loads(a))
            except ValueError:
                values.append(a)
        run_args = values
    with tempfile.TemporaryDirectory(prefix="lfm-pack-analyze-") as tmp:
        out = os.path.join(tmp, "imports.json")
        env = dict(os.environ)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH"), root) if p)
        proc = subprocess.run([sys.executable, "-c", _PROBE, out, "script" if is_script else "function",
                               target, json.dumps(run_args)], env=env)
        if proc.returncode != 0 or not os.path.exists(out):
            raise ValueError(f"the run of {target} failed (exit status {proc.returncode}); "
                             "see its output above")
        with open(out, encoding="utf-8") as f:
            return json.load(f)


def _create(args: argparse.Namespace) -> int:
    from lfm.pack.build import build_package
    from lfm.pack.spec import Spec
    spec = Spec.read(args.spec)
    if args.include_python:
        spec.include_python = True
    package = build_package(spec, args.out)
    print(f"lfm pack create: {package.path}: {package.size_mb:.1f} MB, {package.files} files, "
          f"built in {package.build_time:.1f} s (digest {package.digest[:16]})")
    return 0


def _run(args: argparse.Namespace) -> int:
    from lfm.pack import unpack
    command = list(args.command)
    while command[:1] == ["--root"] and len(command) > 1:  # given after ENV.tar.gz
        args.root, command = command[1], command[2:]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("lfm pack run: give a command after --", file=sys.stderr)
        return 2
    if args.root:
        os.environ["LFM_PACK_ROOT"] = args.root
    return unpack.main([args.package, "--", *command])
