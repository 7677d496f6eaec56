"""read_trace on the public traces and on the small fixtures in tests/data."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lfm import MB
from lfm.trace import COLUMNS, FORMATS, TraceFormatError, detect_format, read_trace

DATA = Path(__file__).parent / "data"


def _schema_ok(frame):
    assert list(frame.columns[:len(COLUMNS)]) == list(COLUMNS)
    for column in COLUMNS:
        if column not in ("category", "status"):
            assert frame[column].dtype == np.float64, column
            assert not (frame[column] < 0).any(), column
    assert set(frame["status"]) <= {"ok", "exhausted", "error"}


@pytest.mark.parametrize("name, rows, categories", [
    ("bioblast.csv", 7754, {"Analysis": 7504, "Join": 126, "Split": 124}),
    ("lobsterCMSsimulation.csv", 30630, None),
])
def test_public_csv_traces(traces_dir, name, rows, categories):
    assert detect_format(traces_dir / name) == "csv"
    frame = read_trace(traces_dir / name)
    _schema_ok(frame)
    assert len(frame) == rows
    if categories:
        assert frame["category"].value_counts().to_dict() == categories
    assert (frame["status"] == "ok").all()
    assert frame["memory"].notna().all() and frame["virtual_memory"].isna().all()
    if name == "bioblast.csv":  # 320 rows with wall_time 0: kept as measured, not dropped or NaN
        assert (frame["wall_time"] == 0).sum() == 320
    first = frame.iloc[0]
    raw = (traces_dir / name).read_text().splitlines()[1].split(",")
    assert first["category"] == raw[0] and first["memory"] == float(raw[2]) and first["disk"] == float(raw[3])


@pytest.mark.parametrize("name, rows, big", [("blast-medium-001.json", 303, "blastall"),
                                             ("bwa-small-001.json", 104, "bwa")])
def test_public_wfcommons(traces_dir, name, rows, big):
    import json
    doc = json.loads((traces_dir / name).read_text())
    frame = read_trace(traces_dir / name)
    _schema_ok(frame)
    assert detect_format(traces_dir / name) == "wfcommons" and len(frame) == rows
    assert frame["category"].value_counts().index[0] == big
    task = doc["workflow"]["tasks"][1]
    row = frame.iloc[1]
    assert row["task_id"] == task["id"] and row["name"] == task["name"]
    assert row["memory"] == pytest.approx(task["memoryInBytes"] / MB)  # MB, not bytes
    assert row["wall_time"] == pytest.approx(task["runtimeInSeconds"])
    assert row["cores"] == pytest.approx(task["avgCPU"] / 100)
    assert row["cpu_time"] == pytest.approx(task["avgCPU"] / 100 * task["runtimeInSeconds"])
    assert row["bytes_read"] == pytest.approx(task["readBytes"] / MB)
    assert row["alloc_cores"] == task["cores"]
    assert frame["task_id"].tolist() == [t["id"] for t in doc["workflow"]["tasks"]]  # file order


def test_wfcommons_15_layout(tmp_path):
    import json
    doc = {"name": "x", "schemaVersion": "1.5", "workflow": {
        "specification": {"tasks": [
            {"name": "split_00000001", "id": "00000001", "parents": [], "children": ["00000002"]},
            {"name": "analyze_ID0000002", "id": "00000002", "parents": ["00000001"], "children": []},
            {"name": "never_ran", "id": "00000003", "parents": [], "children": []}]},
        "execution": {"makespanInSeconds": 14.2, "executedAt": "2024-01-01T00:00:00Z", "tasks": [
            {"id": "00000002", "runtimeInSeconds": 10.0, "coreCount": 4, "avgCPU": 350.0,
             "memoryInBytes": 3 * MB, "readBytes": MB, "writtenBytes": 0, "machines": ["n1"]},
            {"id": "00000001", "runtimeInSeconds": 4.0, "memoryInBytes": 2 * MB}]}}}
    path = tmp_path / "instance.json"
    path.write_text(json.dumps(doc, indent=2))
    frame = read_trace(path)
    _schema_ok(frame)
    assert frame["category"].tolist() == ["split", "analyze"]
    assert frame["memory"].tolist() == [2.0, 3.0]
    assert frame["cores"][1] == 3.5 and frame["cpu_time"][1] == 35.0 and frame["alloc_cores"][1] == 4
    assert math.isnan(frame["cores"][0]) and frame["machine"][1] == "n1"


def test_work_queue_transaction_log():
    """A real log of Work Queue 9.9 (tests/data/make_wq_log.py)."""
    path = DATA / "wq_transactions.log"
    assert detect_format(path) == "wq"
    frame = read_trace(path)
    _schema_ok(frame)
    # 6 tasks; task 5 ("grow") was exhausted once and retried with the category maximum
    assert len(frame) == 7
    by_task = frame.groupby("task_id")["attempt"].apply(list).to_dict()
    assert by_task == {1: [1], 2: [1], 3: [1], 4: [1], 5: [1, 2], 6: [1]}
    assert frame.groupby("category").size().to_dict() == {"grow": 2, "hog": 1, "light": 4}
    hog = frame[frame["category"] == "hog"].iloc[0]
    assert hog["status"] == "exhausted" and hog["exceeded"] == ["memory"]
    assert hog["alloc_memory"] == 60 and hog["memory"] > 60 and hog["result"] == "RESOURCE_EXHAUSTION"
    grow = frame[frame["category"] == "grow"]
    assert grow["status"].tolist() == ["exhausted", "ok"]
    assert grow["alloc_memory"].tolist() == [60.0, 600.0]
    assert (grow["memory"] > 150).all()
    failed = frame[frame["exit_code"] == 3].iloc[0]
    assert failed["status"] == "error" and failed["result"] == "SUCCESS"
    assert (frame.loc[frame["status"] == "ok", "category"] == "light").sum() == 3
    light = frame[frame["category"] == "light"]
    assert (light["alloc_cores"] == 1).all() and (light["alloc_disk"] == 50).all()
    assert (frame["end"] >= frame["start"]).all() and (frame["wall_time"] > 0).all()
    assert (frame["start"] > 1.6e9).all()  # epoch seconds, not microseconds


def test_work_queue_summaries_jsonl():
    """The resource_monitor summaries of the same run: the first object (the
    manager's, without task_id) is skipped, objects written back to back and
    cctools' invalid \\' escapes are read."""
    frame = read_trace(DATA / "wq_summaries.jsonl")
    _schema_ok(frame)
    assert detect_format(DATA / "wq_summaries.jsonl") == "cctools"
    assert sorted(frame["task_id"]) == ["1", "2", "3", "4", "5", "6"]
    hog = frame[frame["category"] == "hog"].iloc[0]
    assert hog["status"] == "exhausted" and hog["exceeded"] == ["memory"] and hog["memory"] > 60
    assert frame.loc[frame["task_id"] == "6", "status"].item() == "error"  # exit status 3


def test_cctools_old_summary_units():
    frame = read_trace(DATA / "cctools_old.summary", category="sim")
    _schema_ok(frame)
    row = frame.iloc[0]
    assert row["category"] == "sim" and row["status"] == "ok"
    assert row["wall_time"] == pytest.approx(256.8) and row["cpu_time"] == pytest.approx(398.9)  # from us
    assert row["start"] == pytest.approx(1617129468.898113)
    assert row["virtual_memory"] == pytest.approx(9120.0)  # GB
    assert row["disk"] == pytest.approx(35.0)  # kB
    assert row["bytes_written"] == pytest.approx(7549747 / MB)  # B
    assert row["cores"] == 1.554 and row["cores_peak"] == 2  # lfm cores is the average


def test_cctools_directory_and_statuses(tmp_path):
    summaries = {
        "a.summary": '{"task_id": "1", "category": "sim", "exit_type": "normal", "exit_status": 0, '
                     '"memory": [100, "MB"], "wall_time": [10, "s"], "cores": [1, "cores"]}',
        "b.summary": '{"task_id": "2", "category": "sim", "exit_type": "limits", "exit_status": 143, '
                     '"limits_exceeded": {"memory": [50, "MB"]}, "memory": [51, "MB"]}',
        "c.summary": '{"task_id": "3", "category": "sim", "exit_type": "signal", "exit_status": 9, '
                     '"memory": [1, "GiB"], "wall_time": [1500, "ms"], "cpu_time": [-1, "s"]}',
        "ignored.txt": "not a summary",
    }
    for name, text in summaries.items():
        (tmp_path / name).write_text(text)
    frame = read_trace(tmp_path)
    _schema_ok(frame)
    assert frame["status"].tolist() == ["ok", "exhausted", "error"]
    assert frame["exceeded"][1] == ["memory"]
    assert frame["memory"].tolist() == [100.0, 51.0, 1024.0]
    assert frame["wall_time"][2] == 1.5 and math.isnan(frame["cpu_time"][2])  # -1: not measured
    assert frame["cores"][0] == 1.0


@pytest.mark.parametrize("name", ["nextflow_trace.txt", "nextflow_trace_raw.csv"])
def test_nextflow_human_and_raw(name):
    path = DATA / name
    assert detect_format(path) == "nextflow"
    frame = read_trace(path)
    _schema_ok(frame)
    assert frame["category"].tolist() == ["FASTQC", "ALIGN", "ALIGN", "MULTIQC"]  # CACHED left out
    assert frame["status"].tolist() == ["ok", "error", "ok", "ok"]
    assert frame["memory"].tolist() == pytest.approx([1.2 * 1024, 7.9 * 1024, 6.5 * 1024, 300.0])
    assert frame["virtual_memory"][0] == pytest.approx(2560.0) and math.isnan(frame["virtual_memory"][2])
    assert frame["wall_time"].tolist() == pytest.approx([63.5, 3722.0, 2400.0, 0.45])
    assert frame["cores"][0] == pytest.approx(1.805) and math.isnan(frame["cores"][2])
    assert frame["cpu_time"][0] == pytest.approx(1.805 * 63.5)
    assert frame["bytes_read"][0] == pytest.approx(512.0)
    assert frame["bytes_written"].tolist() == pytest.approx([10 / 1024, 1536.0, 1433.6, 300 / MB])
    assert frame["exit"].tolist() == ["0", "137", "0", "0"]


def test_nextflow_requested_resources():
    frame = read_trace(DATA / "nextflow_trace.txt")
    assert frame["alloc_memory"].tolist() == [4096.0, 8192.0, 8192.0, 2048.0]
    assert frame["alloc_cores"].tolist() == [2.0, 4.0, 4.0, 1.0]
    assert frame["alloc_wall_time"][0] == 3600.0 and math.isnan(frame["alloc_wall_time"][3])
    assert frame["end"][0] - frame["start"][0] == pytest.approx(63.5)


def test_csv_variants(tmp_path):
    path = tmp_path / "runs.tsv"
    path.write_text("Memory_GB\tWall_Time_min\tcores\tstatus\tnote\n"
                    "1.5\t2\t1.5\tok\tfirst\n"
                    "\n"
                    "2\t0.5\t\texhausted\t\n"
                    "0.25\t1\t-1\tERROR\tx\n")
    frame = read_trace(path)
    _schema_ok(frame)
    assert frame["category"].tolist() == ["runs"] * 3  # no category column: the file stem
    assert frame["memory"].tolist() == [1536.0, 2048.0, 256.0]
    assert frame["wall_time"].tolist() == [120.0, 30.0, 60.0]
    assert frame["status"].tolist() == ["ok", "exhausted", "error"]
    assert frame["cores"][0] == 1.5 and frame["cores"][1:].isna().all()  # empty and -1: not measured
    assert frame["note"][0] == "first"
    assert read_trace(path, format="csv", category="sim")["category"].unique().tolist() == ["sim"]


def test_format_override_and_unknown(traces_dir):
    frame = read_trace(traces_dir / "bioblast.csv", format="csv")
    assert len(frame) == 7754
    with pytest.raises(ValueError, match="unknown trace format 'parquet'; known formats: lfm, csv, cctools"):
        read_trace(traces_dir / "bioblast.csv", format="parquet")
    with pytest.raises(ValueError, match="unknown option.*colour.*accepted: category"):
        read_trace(traces_dir / "bioblast.csv", colour="red")
    with pytest.raises(TraceFormatError, match="bioblast.csv:1: expected 'TIME MANAGER_PID EVENT"):
        read_trace(traces_dir / "bioblast.csv", format="wq")
    assert FORMATS == ("lfm", "csv", "cctools", "wq", "nextflow", "wfcommons", "works21")


def test_csv_text_columns_stay_text(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("category,task_id,memory_mb\n7,0001,5\n7,0002,\n")
    frame = read_trace(path)
    assert frame["category"].tolist() == ["7", "7"] and frame["task_id"].tolist() == ["0001", "0002"]
    assert frame["memory"][0] == 5.0 and math.isnan(frame["memory"][1])


def test_taskvine_style_log(tmp_path):
    """TaskVine's shape: READY or WAITING with an attempt number, worker ids, and
    results given only by DONE (a task given up on never reaches RETRIEVED)."""
    path = tmp_path / "transactions"
    path.write_text(
        "# time manager_pid MANAGER manager_pid START|END\n"
        "\n"
        "1700000000000000 77 MANAGER 77 START\n"
        '1700000000000100 77 TASK 1 READY sim FIRST_RESOURCES 1 {"memory":[1,"GB"],"cores":[2,"cores"]}\n'
        '1700000000000200 77 TASK 2 WAITING io FIRST_RESOURCES 1 {"disk":[500,"MB"]}\n'
        "1700000000000300 77 WORKER worker-abc CONNECTION 10.0.0.5:4242\n"
        '1700000000000400 77 TASK 1 RUNNING worker-abc FIRST_RESOURCES {"memory":[1024,"MB"],"cores":[2,"cores"],'
        '"wall_time":[60,"s"]}\n'
        '1700000002000400 77 TASK 1 RETRIEVED RESOURCE_EXHAUSTION  137 {"wall_time":[60,"s"]} '
        '{"wall_time":[61000000,"us"],"memory":[700,"MB"],"cores_avg":[1.5,"cores"],"size_input_mgr":[0,"MB"]}\n'
        '1700000002000500 77 TASK 1 WAITING sim MAX_RESOURCES 2 {"memory":[2,"GB"],"cores":[2,"cores"]}\n'
        '1700000002000600 77 TASK 1 RUNNING worker-abc MAX_RESOURCES {"memory":[2048,"MB"],"cores":[2,"cores"]}\n'
        '1700000005000000 77 TASK 1 RETRIEVED SUCCESS  0  {} {"wall_time":[90,"s"],"memory":[710,"MB"]}\n'
        '1700000005000100 77 TASK 1 DONE SUCCESS  0  {} {"wall_time":[90,"s"],"memory":[710,"MB"]}\n'
        "1700000005500000 77 TASK 2 RUNNING worker-abc FIRST_RESOURCES\n"  # no resources: allowed
        '1700000006000000 77 TASK 2 DONE FORSAKEN  -1  {} {}\n'
        "1700000007000000 77 MANAGER 77 END\n")
    assert detect_format(path) == "wq"
    frame = read_trace(path)
    _schema_ok(frame)
    assert frame["task_id"].tolist() == [1, 1, 2] and frame["attempt"].tolist() == [1, 2, 1]
    assert frame["status"].tolist() == ["exhausted", "ok", "error"]
    assert frame["exceeded"].tolist() == [["wall_time"], [], []]
    assert frame["alloc_memory"].tolist()[:2] == [1024.0, 2048.0] and frame["alloc_wall_time"][0] == 60
    assert frame["alloc_disk"][2] == 500 and frame["result"][2] == "FORSAKEN"
    assert frame["wall_time"].tolist()[:2] == [61.0, 90.0] and math.isnan(frame["wall_time"][2])
    assert frame["cores"][0] == 1.5 and frame["worker"][0] == "worker-abc"
    assert frame["start"][0] == pytest.approx(1700000000.0004)  # RUNNING time when not measured
    assert frame["end"][2] == pytest.approx(1700000006.0) and frame["start"][2] == pytest.approx(1700000005.5)


def _system_work_queue() -> bool:
    import subprocess
    try:
        return subprocess.run(["/usr/bin/python3", "-c", "import work_queue"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.workqueue
def test_live_work_queue_log(tmp_path):
    """The installed Work Queue writes logs this reader understands (a fresh, short run)."""
    import subprocess
    if not _system_work_queue():
        pytest.skip("Debian's python3-workqueue is not installed (/usr/bin/python3 cannot import work_queue)")
    done = subprocess.run(["/usr/bin/python3", str(DATA / "make_wq_log.py"), str(tmp_path), "--quick"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    log = read_trace(tmp_path / "wq_transactions.log")
    _schema_ok(log)
    assert sorted(log["task_id"]) == [1, 2, 3, 4] and (log["category"] == "light").all()
    assert log.set_index("task_id")["status"].to_dict() == {1: "ok", 2: "ok", 3: "ok", 4: "error"}
    assert (log["alloc_memory"] == 100).all()
    # Work Queue's own monitor sometimes reports no measurement for a task of a
    # few ms on a loaded machine (seen in CI): the reader then says NaN, never 0
    assert log["memory"].notna().sum() >= 2 and not (log["memory"] == 0).any(), log["memory"]
    summaries = read_trace(tmp_path / "wq_summaries.jsonl")
    assert sorted(summaries["task_id"]) == ["1", "2", "3", "4"]
