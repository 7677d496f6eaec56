"""Malformed inputs: every reader raises TraceFormatError naming file, line and expectation."""
from __future__ import annotations

import json

import pytest

from lfm.trace import TraceFormatError, read_trace


def _fails(tmp_path, name, content, line, message, **kwargs):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(TraceFormatError) as info:
        read_trace(path, **kwargs)
    error = info.value
    assert isinstance(error, ValueError)
    assert error.path == str(path)
    assert error.line == line, str(error)
    assert message in str(error), str(error)
    where = str(path) if line is None else f"{path}:{line}"
    assert str(error).startswith(f"{where}: expected"), str(error)
    return error


def test_empty_and_unknown_files(tmp_path):
    _fails(tmp_path, "empty.csv", "", None, "got an empty file")
    _fails(tmp_path, "blank.log", "\n  \n", None, "got an empty file")
    _fails(tmp_path, "empty2.csv", "", None, "expected a csv trace, got an empty file", format="csv")
    error = _fails(tmp_path, "notes.txt", "hello world\nsecond line\n", 1, "hello world")
    assert "lfm, csv, cctools, wq, nextflow, wfcommons" in str(error)
    _fails(tmp_path, "other.json", '{"a": 1}\n', 1, "expected a trace in one of the formats")
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        read_trace(tmp_path / "missing.csv")


@pytest.mark.parametrize("content, line, message", [
    ("category,memory,wall_time\na,10,1\n\nb,12MB,2\n", 4, "expected a number in column 'memory', got '12MB'"),
    ("category,memory\na,1\na,2,3\n", 3, "expected 2 fields like the header, got 3"),
    ("category,host,note\na,x,y\n", 1, "at least one resource column"),
    ("category,memory,status\na,1,ok\na,2,finished\n", 3, "expected status ok, exhausted, error, got 'finished'"),
    ("category,memory\na,1\n,2\n", 3, "expected a category, got an empty cell"),
    ("memory,memory_mb\n1,2\n", 1, "expected one column for 'memory'"),
    ("category,memory,wall_time\na,1,2\na,inf,2\n", 3, "expected a finite number in column 'memory', got inf"),
    ("category,memory,wall_time\na,1,2\na,1,1e999\n", 3, "expected a finite number in column 'wall_time'"),
])
def test_malformed_csv(tmp_path, content, line, message):
    _fails(tmp_path, "bad.csv", content, line, message, format="csv")


GOOD = '{"task_id": "1", "category": "a", "memory": [10, "MB"]}'


@pytest.mark.parametrize("content, line, message", [
    (GOOD + "\n" + '{"task_id": "2", "memory": [10, "MB"]\n', 2, "cut short"),
    (GOOD + "\n" + '{"task_id": "2", "memory": [10, "MB"]}}\n', 2, "invalid JSON"),
    (GOOD + "\n" + '{"task_id": "2", "memory": [10, "s"]}\n', 2, "expected a size unit"),
    (GOOD + "\n" + '{"task_id": "2", "wall_time": [10, "MB"]}\n', 2, "expected a time unit"),
    ('{"task_id": "2", "memory": ["lots", "MB"]}\n', 1, "expected a number for 'memory'"),
    ('{"task_id": "2", "memory": [1, 2, 3]}\n', 1, "as a number or [value, \"unit\"]"),
    ('{"task_id": "2", "exit_type": "vanished"}\n', 1, "expected 'exit_type' in normal, signal, limits"),
    ('{"task_id": "2", "limits_exceeded": ["memory"]}\n', 1, "expected 'limits_exceeded' as a JSON object"),
    ('{\n  "task_id": "2",\n  "memory": [10, "MB"],\n', 1, "cut short"),  # truncated summary
    (GOOD + "\n" + '[1, 2]\n', 2, "expected a JSON object (a task summary)"),
    (GOOD + "\n" + '{"task_id": "2", "memory": [1e999, "MB"]}\n', 2, "expected a finite number for 'memory', got inf"),
    ('{"task_id": "2", "wall_time": NaN}\n', 1, "expected a finite number for 'wall_time', got nan"),
])
def test_malformed_cctools(tmp_path, content, line, message):
    _fails(tmp_path, "bad.summary", content, line, message, format="cctools")


def test_cctools_empty_directory(tmp_path):
    with pytest.raises(TraceFormatError, match="expected a directory holding \\*.summary files, found none"):
        read_trace(tmp_path)


WQ_HEAD = ("# time manager_pid TASK taskid WAITING category_name (FIRST_RESOURCES|MAX_RESOURCES) {resources}\n"
           "1700000000000000 42 MANAGER START\n"
           '1700000000000001 42 TASK 1 WAITING sim FIRST_RESOURCES {"memory":[100,"MB"],"cores":[1,"cores"]}\n'
           '1700000000000002 42 TASK 1 RUNNING 10.0.0.1:9000  FIRST_RESOURCES {"memory":[100,"MB"]}\n')


@pytest.mark.parametrize("tail, message", [
    ('1700000000000003 42 TASK 1 DONE SUCCESS  0  {} {"memory":[50,"MB"],"wall_ti\n', "truncated line?"),
    ("1700000000000003 42 TASK 1 DONE SUCCESS  0\n", "no JSON object; truncated line?"),
    ('1700000000000003 42 TASK 1 DONE SUCCESS  zero  {} {"memory":[50,"MB"]}\n', "RESULT exit_code"),
    ('1700000000000003 42 TASK 1 DONE SUCCESS  0  {} {"memory":[50,"parsecs"]}\n', "expected a size unit"),
    ('17000000000000x3 42 TASK 1 DONE SUCCESS  0  {} {}\n', "integer TIME and MANAGER_PID"),
    ('1700000000000003 42 TASK one DONE SUCCESS  0  {} {}\n', "'TIME MANAGER_PID TASK id STATE ...'"),
    ('1700000000000003 42 TASK 1 DONE SUCCESS  0  {} {"memory":[50,"MB"]} trailing\n', "extra text"),
])
def test_malformed_wq_log(tmp_path, tail, message):
    _fails(tmp_path, "txn.log", WQ_HEAD + tail, 5, message)


def test_wq_log_without_events(tmp_path):
    _fails(tmp_path, "txn.log", "# time manager_pid MANAGER START|END\n", None, "got none", format="wq")


NF_HEADER = "task_id\tprocess\tstatus\texit\trealtime\t%cpu\tpeak_rss\n"


@pytest.mark.parametrize("row, message", [
    ("1\tA\tRUNNING\t0\t1s\t100%\t10 MB\n", "expected status COMPLETED, FAILED, ABORTED, CACHED, got 'RUNNING'"),
    ("1\tA\tCOMPLETED\t0\t1s\t100%\t12 XB\n", "expected a size like '1.2 GB', '512 MB' or a number of bytes, got '12 XB' (column 'peak_rss')"),
    ("1\tA\tCOMPLETED\t0\t3 fortnights\t100%\t1 GB\n", "got '3 fortnights' (column 'realtime')"),
    ("1\tA\tCOMPLETED\t0\t1s\tbusy\t1 GB\n", "expected a CPU percentage like '180.5%', got 'busy' (column '%cpu')"),
    ("1\tA\tCOMPLETED\t0\t1s\n", "expected 7 fields like the header, got 5 (truncated line?)"),
    ("1\tA\tCOMPLETED\t0\t1s\t100%\t1e999\n", "expected a finite size, got '1e999' (column 'peak_rss')"),
    ("1\tA\tCOMPLETED\t0\t1e400\t100%\t1 GB\n", "expected a finite duration, got '1e400' (column 'realtime')"),
])
def test_malformed_nextflow(tmp_path, row, message):
    _fails(tmp_path, "trace.txt", NF_HEADER + "0\tA\tCOMPLETED\t0\t2s\t50%\t1 GB\n" + row, 3, message)


def test_nextflow_missing_status_column(tmp_path):
    _fails(tmp_path, "trace.txt", "task_id\tprocess\trealtime\n1\tA\t1s\n", 1, "expected a 'status' column",
           format="nextflow")


def _instance(tasks):
    return json.dumps({"name": "x", "schemaVersion": "1.4", "workflow": {"tasks": tasks}})


@pytest.mark.parametrize("content, where, message", [
    (_instance([{"name": "a_ID01", "runtimeInSeconds": 1}, {"name": "b_ID02", "memoryInBytes": "big"}]),
     "workflow.tasks[1].memoryInBytes", "expected a number, got 'big'"),
    (_instance([{"runtimeInSeconds": 1}]), "workflow.tasks[0].name", "expected a task name"),
    (_instance({"a": 1}), "workflow.tasks", "expected a list of tasks"),
    (_instance([7]), "workflow.tasks[0]", "expected a task object"),
    (json.dumps({"schemaVersion": "1.5", "workflow": {"jobs": []}}), "workflow",
     "expected 'workflow.tasks' (schema 1.4) or 'workflow.specification.tasks' (schema 1.5+), got keys jobs"),
    (json.dumps({"schemaVersion": "1.5", "workflow": {"specification": {"tasks": []}}}), "workflow.execution",
     "a specification without execution data"),
    (json.dumps({"schemaVersion": "1.5", "workflow": 3}), "workflow", "expected a 'workflow' object"),
    (_instance([{"name": "a_ID01", "runtimeInSeconds": 1e999}]), "workflow.tasks[0].runtimeInSeconds",
     "expected a finite number, got inf"),
])
def test_malformed_wfcommons(tmp_path, content, where, message):
    _fails(tmp_path, "instance.json", content, where, message)


def test_wfcommons_invalid_json(tmp_path):
    _fails(tmp_path, "instance.json", '{"workflow": {"tasks": [\n{"name": "a"},\n', 3, "invalid JSON",
           format="wfcommons")


def test_not_utf8_and_bom(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("category,memory\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(TraceFormatError, match="latin1.csv: expected UTF-8 text, got undecodable bytes"):
        read_trace(path)
    bom = tmp_path / "excel.csv"
    bom.write_bytes("category,memory\nsim,1\n".encode("utf-8-sig"))
    assert read_trace(bom)["category"].tolist() == ["sim"]
