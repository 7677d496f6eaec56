"""``lfm pack analyze / create / run``, run as a user runs them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def lfm(*args, cwd, env=None, timeout=200):
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "lfm", "pack", *args], capture_output=True, text=True,
                          cwd=cwd, env=full, timeout=timeout)


@pytest.fixture
def script(tmp_path):
    (tmp_path / "cli_helper.py").write_text("import numpy\n\ndef two():\n    return int(numpy.int64(2))\n")
    (tmp_path / "job.py").write_text(
        "import importlib, sys\nimport cli_helper\n"
        "importlib.import_module(sys.argv[1] if len(sys.argv) > 1 else 'json')\n"
        "print(cli_helper.two())\n")
    return tmp_path / "job.py"


@pytest.mark.timeout(120)
def test_analyze_says_static_scan_or_run_and_the_run_sees_dynamic_imports(script, tmp_path):
    scan = lfm("analyze", str(script), cwd=tmp_path)
    assert scan.returncode == 0, scan.stderr
    assert "from a static scan" in scan.stderr
    spec = json.loads(scan.stdout)
    assert any(p.startswith("numpy==") for p in spec["pip"]) and "cli_helper" in spec["lfm"]["local"]
    assert not any(p.startswith("pandas==") for p in spec["pip"])
    run = lfm("analyze", "--format", "requirements", str(script), "--run", "pandas", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "from a run" in run.stderr
    lines = run.stdout.splitlines()
    assert any(line.startswith("pandas==") for line in lines)
    assert any("cli_helper" in line for line in lines if line.startswith("# local source"))


@pytest.mark.timeout(200)
def test_create_then_run_inside_the_package(script, tmp_path):
    spec_path = tmp_path / "spec.json"
    made = lfm("analyze", "-o", str(spec_path), str(script), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    created = lfm("create", str(spec_path), str(tmp_path / "env.tar.gz"), cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "MB" in created.stdout and "built in" in created.stdout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # a bare interpreter (-S -E: no site, no PYTHONPATH of ours) finds numpy and the helper inside
    ran = subprocess.run([sys.executable, "-m", "lfm", "pack", "run", str(tmp_path / "env.tar.gz"),
                          "--root", str(tmp_path / "root"), "--", sys.executable, "-S", "-c",
                          "import cli_helper; print(cli_helper.two())"],
                         capture_output=True, text=True, cwd=elsewhere, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "2" and "unpacked env.tar.gz" in ran.stderr


def test_bad_input_is_a_clear_error(tmp_path):
    missing = lfm("analyze", str(tmp_path / "nope.py"), cwd=tmp_path)
    assert missing.returncode == 2 and "no such script" in missing.stderr
    (tmp_path / "bad.json").write_text('{"pip": ["numpy"]}')
    bad = lfm("create", str(tmp_path / "bad.json"), str(tmp_path / "x.tar.gz"), cwd=tmp_path)
    assert bad.returncode == 2 and "name==version" in bad.stderr
    unknown = lfm("analyze", "json:no_such_function", cwd=tmp_path)
    assert unknown.returncode == 2 and "has no 'no_such_function'" in unknown.stderr
    for name, data in (("notes.txt", b"not a package\n"), ("cut.tar.gz", b"\x1f\x8b\x08\x00" + b"\0" * 40)):
        (tmp_path / name).write_bytes(data)
        broken = lfm("run", str(tmp_path / name), "--", "true", cwd=tmp_path)
        assert broken.returncode == 2 and "is not a readable package (.tar.gz)" in broken.stderr, broken.stderr
        assert "Traceback" not in broken.stderr
