"""``lfm run``: JSON with unit-suffixed keys, exit status preserved, limits."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

from lfm.cli import main
from lfm.cli.run import EXHAUSTED_STATUS

PY = sys.executable


def run_cli(argv, capfd):
    status = main(["run", *argv])
    out = capfd.readouterr()
    return status, out


def test_prints_resources_as_json_and_keeps_exit_status(capfd):
    code = "import sys; x = bytearray(b'1') * (120 * 2**20); print('hello'); sys.exit(3)"
    status, out = run_cli(["--", PY, "-c", code], capfd)
    assert status == 3
    text = out.out
    assert text.startswith("hello\n")
    report = json.loads(text[len("hello\n"):])
    assert report["status"] == "error" and report["exit_status"] == 3
    assert 120 <= report["memory_MB"] <= 200
    for key in ("wall_time_s", "cpu_time_s", "cores", "start_s", "end_s", "disk_MB",
                "bytes_read_MB", "bytes_written_MB", "total_processes"):
        assert key in report, key


def test_signal_exit_status_is_128_plus_signal(capfd):
    status, out = run_cli(["--", "sh", "-c", "kill -TERM $$"], capfd)
    assert status == 128 + signal.SIGTERM
    report = json.loads(out.out)
    assert report["signal"] == signal.SIGTERM and report["exit_status"] is None


def test_limit_exhaustion(tmp_path, capfd):
    out_file = tmp_path / "res.json"
    code = "import time; x = bytearray(b'1') * (400 * 2**20); time.sleep(30)"
    status, out = run_cli(["--limits", "memory=100,wall_time=20", "--json-out", str(out_file),
                           "--", PY, "-c", code], capfd)
    assert status == EXHAUSTED_STATUS
    assert out.out == ""
    report = json.loads(out_file.read_text())
    assert report["status"] == "exhausted" and report["exceeded"] == {"memory": 100}
    assert report["memory_MB"] > 100 and report["wall_time_s"] < 5


def test_bad_arguments(capfd):
    status, out = run_cli(["--limits", "memroy=1", "--", "true"], capfd)
    assert status == 2 and "known limits: memory" in out.err
    status, out = run_cli(["--limits", "memory", "--", "true"], capfd)
    assert status == 2 and "NAME=VALUE" in out.err
    status, out = run_cli([], capfd)
    assert status == 2 and "no command" in out.err
    status, out = run_cli(["--", "/no/such/command"], capfd)
    assert status == 127 and json.loads(out.out)["status"] == "error"


def test_json_out_that_cannot_be_written(tmp_path, capfd):
    status, out = run_cli(["--json-out", str(tmp_path / "nowhere" / "r.json"), "--", "true"], capfd)
    assert status == 2 and "nowhere' does not exist" in out.err and not out.out
    # written after the command ran: the measurement is not lost, it goes to standard output
    status, out = run_cli(["--json-out", str(tmp_path), "--", "true"], capfd)
    assert status == 0 and "cannot write" in out.err and json.loads(out.out)["status"] == "ok"


def test_module_entry_point_end_to_end():
    done = subprocess.run([PY, "-m", "lfm", "run", "--", "sh", "-c", "exit 5"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 5, done.stderr
    assert json.loads(done.stdout)["exit_status"] == 5
