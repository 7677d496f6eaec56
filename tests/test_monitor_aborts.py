"""Calls that do not return normally (sys.exit, argparse errors, KeyboardInterrupt,
GeneratorExit, os._exit) and the modules a call imports, on both isolated modes:
the fork server (``isolate=True``) and the direct fork (``isolate="fork"``).

Each is a real process; each test has a timeout, so a hang fails instead of
blocking the suite.
"""
from __future__ import annotations

import pickle

import pytest

from lfm import CallAborted, CallExited, MonitorError, monitored
from lfm.monitor import run_call

MODES = [True, "fork"]


def exits(code):
    import sys
    sys.exit(code)


def bad_arguments():
    import argparse
    parser = argparse.ArgumentParser(prog="simulate")
    parser.add_argument("--steps", type=int, required=True)
    parser.parse_args(["--steps", "many"])


def interrupted():
    raise KeyboardInterrupt("stop here")


def generator_exit():
    raise GeneratorExit


def hard_exit(code):
    import os
    os._exit(code)


def after_exit_still_works():
    return 42


@pytest.mark.timeout(60)
@pytest.mark.parametrize("isolate", MODES)
@pytest.mark.parametrize("code", [3, 0, None, "usage: simulate FILE"])
def test_sys_exit_is_call_exited(isolate, code):
    with pytest.raises(CallExited) as info:
        run_call(exits, (code,), isolate=isolate)
    error = info.value
    assert str(error) == f"exits called sys.exit({code!r})"
    assert error.code == code
    assert isinstance(error.exception, SystemExit) and error.exception.code == code
    assert isinstance(error, CallAborted) and isinstance(error, MonitorError)
    assert error.resources["wall_time"] >= 0
    # the caller goes on: the next call runs normally
    assert run_call(after_exit_still_works, isolate=isolate)[0] == 42


@pytest.mark.timeout(60)
@pytest.mark.parametrize("isolate", MODES)
def test_argparse_error_is_call_exited(isolate, capfd):
    with pytest.raises(CallExited, match=r"bad_arguments called sys.exit\(2\)") as info:
        run_call(bad_arguments, isolate=isolate)
    assert info.value.code == 2
    assert "invalid int value: 'many'" in capfd.readouterr().err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("isolate", MODES)
def test_keyboard_interrupt_inside_the_call_is_call_aborted(isolate):
    with pytest.raises(CallAborted) as info:
        run_call(interrupted, isolate=isolate)
    error = info.value
    assert not isinstance(error, CallExited)
    assert str(error) == "interrupted raised KeyboardInterrupt('stop here')"
    assert isinstance(error.exception, KeyboardInterrupt)
    assert "stop here" in error.__cause__.tb  # the remote traceback


@pytest.mark.timeout(60)
@pytest.mark.parametrize("isolate", MODES)
def test_generator_exit_is_call_aborted(isolate):
    with pytest.raises(CallAborted, match=r"generator_exit raised GeneratorExit\(\)"):
        run_call(generator_exit, isolate=isolate)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("isolate", MODES)
def test_os_exit_is_call_exited_without_outcome(isolate):
    with pytest.raises(CallExited, match="hard_exit exited with status 5 without returning") as info:
        run_call(hard_exit, (5,), isolate=isolate)
    assert info.value.code == 5 and info.value.exception is None
    assert info.value.resources["wall_time"] >= 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("isolate", MODES)
def test_monitored_raises_the_named_error(isolate):
    @monitored(isolate=isolate)
    def simulate():
        import sys
        sys.exit(3)

    with pytest.raises(CallExited, match=r"simulate called sys.exit\(3\)"):
        simulate()


def test_errors_survive_pickling():
    exited = pickle.loads(pickle.dumps(CallExited("f called sys.exit(3)", code=3,
                                                  exception=SystemExit(3))))
    assert type(exited) is CallExited and exited.code == 3 and exited.exception.code == 3
    aborted = pickle.loads(pickle.dumps(CallAborted("f raised KeyboardInterrupt()",
                                                    exception=KeyboardInterrupt())))
    assert type(aborted) is CallAborted and isinstance(aborted.exception, KeyboardInterrupt)
    assert str(aborted) == "f raised KeyboardInterrupt()"


@pytest.mark.timeout(60)
def test_sys_exit_code_survives_tblib_pickling():
    """Parsl installs tblib's pickling support, which rebuilds a SystemExit
    without the __init__ that sets its code; the CallExited still carries it."""
    import copyreg
    tblib = pytest.importorskip("tblib.pickling_support", reason="tblib comes with Parsl")
    before = dict(copyreg.dispatch_table)  # pickle holds this very dict: restore in place
    tblib.install()
    try:
        with pytest.raises(CallExited) as info:
            run_call(exits, (3,), isolate="fork")
        assert info.value.code == 3 and info.value.exception.code == 3
        exited = pickle.loads(pickle.dumps(CallExited("f called sys.exit(3)", code=3,
                                                      exception=SystemExit(3))))
        assert exited.exception.code == 3
    finally:
        copyreg.dispatch_table.clear()
        copyreg.dispatch_table.update(before)


# --- Resources.imports ---

def imports_probe():
    import json  # noqa: F401 - stdlib: never reported
    import lfm_probe_pkg.sub  # noqa: F401 - made by the test below
    return "ok"


def imports_nothing_new():
    return 1


@pytest.fixture
def probe_package(tmp_path, monkeypatch):
    pkg = tmp_path / "lfm_probe_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "sub.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield pkg
    import sys
    for name in [n for n in sys.modules if n.startswith("lfm_probe_pkg")]:
        del sys.modules[name]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("isolate", MODES)
def test_imports_names_non_stdlib_top_level_modules(isolate, probe_package):
    result, res = run_call(imports_probe, isolate=isolate)
    assert result == "ok"
    assert res.imports["lfm_probe_pkg"] == str(probe_package / "__init__.py")
    assert "lfm_probe_pkg.sub" not in res.imports  # top-level names only
    assert "json" not in res.imports and "lfm" not in res.imports
    assert all("." not in name for name in res.imports)
    again = pickle.loads(pickle.dumps(res))
    assert again.imports == res.imports and dict(again) == dict(res)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("isolate", MODES)
def test_imports_of_a_failing_call_travel_on_its_error(isolate, probe_package):
    def fails():
        import lfm_probe_pkg  # noqa: F401
        raise ValueError("no")

    with pytest.raises(ValueError) as info:
        run_call(fails, isolate=isolate)
    assert "lfm_probe_pkg" in info.value.lfm_resources.imports


def test_imports_empty_inline(probe_package):
    _, res = run_call(imports_probe, isolate=False)
    assert res.imports == {}


def test_inline_sys_exit_is_call_exited():
    with pytest.raises(CallExited, match=r"exits called sys.exit\(4\)"):
        run_call(exits, (4,), isolate=False)
