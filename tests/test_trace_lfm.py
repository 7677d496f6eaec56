"""lfm's own trace format: make_row, Trace appends (incl. concurrent ones), reading back."""
from __future__ import annotations

import json
import math
import multiprocessing
import threading

import numpy as np
import pandas as pd
import pytest

from lfm import Resources
from lfm.trace import COLUMNS, STATUSES, Trace, TraceFormatError, make_row, read_trace


def test_make_row_shapes_and_validates():
    row = make_row("sim", Resources({"memory": 812.5, "cores": 1.3}), "ok",
                   alloc={"memory": 1024, "cores": 2}, task_id=7, exceeded=[])
    assert row == {"category": "sim", "status": "ok", "memory": 812.5, "cores": 1.3,
                   "alloc_memory": 1024.0, "alloc_cores": 2.0, "task_id": 7, "exceeded": []}
    assert make_row("sim", {"memory": None, "disk": math.nan}, "error") == \
        {"category": "sim", "status": "error"}
    with pytest.raises(ValueError, match="status must be one of ok, exhausted, error"):
        make_row("sim", {}, "failed")
    with pytest.raises(ValueError, match="finite number >= 0"):
        make_row("sim", {"memory": -1}, "ok")
    with pytest.raises(ValueError, match="finite number >= 0"):
        make_row("sim", {"memory": 1}, "ok", alloc={"memory": math.inf})
    with pytest.raises(ValueError, match="must be a number"):
        make_row("sim", {"memory": "12"}, "ok")
    with pytest.raises(ValueError, match="category"):
        make_row("", {}, "ok")
    with pytest.raises(ValueError, match="clashes"):
        make_row("sim", {}, "ok", memory=3)


def test_round_trip(tmp_path):
    trace = Trace(tmp_path / "t.jsonl")
    assert list(trace.read().columns) == list(COLUMNS) and trace.read().empty
    trace.append(make_row("sim", {"memory": 100.0, "wall_time": 2.5, "cores": np.float64(1.5)}, "ok",
                          task_id=1, attempt=1))
    trace.extend([
        make_row("sim", {"memory": 300.0}, "exhausted", alloc={"memory": 256}, task_id=2,
                 attempt=1, exceeded=["memory"]),
        make_row("io", {"disk": 5.0, "bytes_written": 5.0}, "error", error="OSError: disk full"),
    ])
    frame = read_trace(trace.path)
    assert frame.equals(trace.read())
    assert list(frame.columns[:len(COLUMNS)]) == list(COLUMNS)
    assert list(frame.columns[len(COLUMNS):]) == ["alloc_memory", "task_id", "attempt", "exceeded", "error"]
    assert frame["status"].tolist() == ["ok", "exhausted", "error"]
    assert frame["memory"].tolist()[:2] == [100.0, 300.0] and math.isnan(frame["memory"][2])
    assert frame["exceeded"][1] == ["memory"]
    assert all(frame[c].dtype == np.float64 for c in COLUMNS if c not in ("category", "status"))
    lines = (tmp_path / "t.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["category"] for line in lines)


def test_append_rejects_bad_rows(tmp_path):
    trace = Trace(tmp_path / "t.jsonl")
    with pytest.raises(ValueError, match="status"):
        trace.append({"category": "x", "status": "done"})
    with pytest.raises(ValueError, match="JSON"):
        trace.append({"category": "x", "status": "ok", "thing": object()})
    assert not (tmp_path / "t.jsonl").exists()


def _append_many(path: str, writer: int, count: int) -> None:
    trace = Trace(path)
    padding = "x" * (100 + 37 * writer)  # rows of different lengths make torn lines visible
    for i in range(count):
        trace.append(make_row("w%d" % writer, {"memory": float(i)}, "ok", writer=writer, i=i, pad=padding))


def test_concurrent_appends_from_processes_and_threads(tmp_path):
    path = str(tmp_path / "shared.jsonl")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(path, w, 200)) for w in range(4)]
    threads = [threading.Thread(target=_append_many, args=(path, 10 + w, 100)) for w in range(2)]
    for worker in procs + threads:
        worker.start()
    for worker in procs + threads:
        worker.join(60)
    assert all(p.exitcode == 0 for p in procs)
    lines = open(path).read().split("\n")
    assert lines[-1] == ""
    rows = [json.loads(line) for line in lines[:-1]]  # every line whole and parseable
    assert len(rows) == 4 * 200 + 2 * 100
    for writer, count in [(0, 200), (1, 200), (2, 200), (3, 200), (10, 100), (11, 100)]:
        mine = [r["i"] for r in rows if r["writer"] == writer]
        assert mine == list(range(count))  # each writer's rows complete and in its order
    frame = read_trace(path)
    assert len(frame) == 1000 and set(frame["status"]) == {"ok"}


@pytest.mark.parametrize("content, line, expected", [
    ('{"category": "a", "status": "ok"}\n{"category": "a", "status": "ok"\n', 2, "invalid JSON"),
    ('{"category": "a", "status": "ok"}\n\n[1, 2]\n', 3, "expected a JSON object"),
    ('{"category": "a", "status": "finished"}\n', 1, "expected 'status' in ok, exhausted, error"),
    ('{"category": "a", "status": "ok", "memory": "big"}\n', 1, "'memory' to be a finite number"),
    ('{"category": "a", "status": "ok", "memory": Infinity}\n', 1, "'memory' to be a finite number"),
    ('{"status": "ok", "category": ""}\n', 1, "non-empty string 'category'"),
])
def test_malformed_lfm_trace(tmp_path, content, line, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(TraceFormatError, match=expected) as info:
        read_trace(path, format="lfm")
    assert info.value.path == str(path) and info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: expected")


def test_detected_by_content_whatever_the_name(tmp_path):
    trace = Trace(tmp_path / "run.summary")  # a misleading extension
    trace.append(make_row("sim", {"memory": 1.0}, "exhausted", exceeded=["memory", "disk"]))
    assert read_trace(trace.path)["exceeded"][0] == ["memory", "disk"]


def test_statuses_constant():
    assert STATUSES == ("ok", "exhausted", "error")


def test_normalize_user_frame():
    from lfm.trace import normalize
    frame = normalize(pd.DataFrame({"note": ["x", "y"], "alloc_cores": [1, 2], "alloc_memory": [10, 20],
                                    "memory": [5, -1], "category": ["a", "b"]}))
    assert list(frame.columns) == [*COLUMNS, "alloc_memory", "alloc_cores", "note"]
    assert frame["memory"][0] == 5.0 and math.isnan(frame["memory"][1])  # -1 sentinel: not measured
    assert frame["status"].tolist() == ["ok", "ok"] and frame["wall_time"].isna().all()


def test_recording_does_not_import_pandas(tmp_path):
    import subprocess
    import sys
    code = ("import sys; from lfm.trace import Trace, make_row; "
            f"Trace({str(tmp_path / 't.jsonl')!r}).append(make_row('a', {{'memory': 1.0}}, 'ok')); "
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert len(read_trace(tmp_path / "t.jsonl")) == 1
