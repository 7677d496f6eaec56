"""run_call(..., include_root=False): only the call's descendants are measured,
as run_command measures a command."""
from __future__ import annotations

import subprocess
import sys

import pytest

from lfm import ResourceExhaustion
from lfm.monitor import run_call, run_command

CODE = "import time; b = bytearray(50 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.4)"


def popen_command() -> int:
    return subprocess.Popen([sys.executable, "-c", CODE]).wait()


def test_descendants_only_matches_run_command():
    _, cmd = run_command([sys.executable, "-c", CODE])
    _, only = run_call(popen_command, include_root=False)
    _, whole = run_call(popen_command)
    assert abs(only["memory"] - cmd["memory"]) < 15, (only["memory"], cmd["memory"])
    # the default still counts the call's own interpreter
    assert whole["memory"] > only["memory"] + 5
    assert only["cpu_time"] <= whole["cpu_time"] + 0.05
    assert only["wall_time"] >= 0.4


def test_attribute_on_the_function_selects_the_mode():
    def fn() -> int:
        return popen_command()
    fn.lfm_include_root = False
    _, res = run_call(fn, isolate="fork")
    assert 50 <= res["memory"] < 80


def test_limits_apply_to_the_descendants_and_kill_them():
    with pytest.raises(ResourceExhaustion) as info:
        run_call(popen_command, limits={"memory": 30}, include_root=False, interval=0.05)
    assert info.value.exceeded == {"memory": 30}


def test_inline_mode_refuses_it():
    with pytest.raises(ValueError, match="isolated"):
        run_call(popen_command, isolate=False, include_root=False)
