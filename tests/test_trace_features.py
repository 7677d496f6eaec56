"""Features known before a task runs, read from traces: input_size (MB) and free-form numeric columns."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import predictors
from lfm import MB
from lfm.trace import Trace, TraceFormatError, make_row, read_trace

DATA = Path(__file__).parent / "data"


def test_csv_feature_columns(tmp_path: Path) -> None:
    path = tmp_path / "runs.csv"
    path.write_text("category,memory,input_size_gb,n_reads,task_id,host,note\n"
                    "a,100,0.5,1000,0001,n1,x\n"
                    "a,200,1,,0002,n2,\n"
                    "b,300,-1,3e3,0003,7,y\n")
    df = read_trace(path)
    assert df["input_size"].tolist()[:2] == [512.0, 1024.0] and math.isnan(df["input_size"][2])
    assert "input_size_gb" not in df.columns
    assert df["n_reads"].dtype == np.float64 and df["n_reads"][0] == 1000.0 and math.isnan(df["n_reads"][1])
    assert df["task_id"].tolist() == ["0001", "0002", "0003"]      # identifiers stay text as written
    assert df["host"].tolist() == ["n1", "n2", "7"] and df["note"][0] == "x"
    plain = tmp_path / "plain.csv"
    plain.write_text("memory,input_size\n10,3.5\n")
    assert read_trace(plain)["input_size"].tolist() == [3.5]


def test_csv_bad_feature(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("category,memory,input_size\na,1,2\na,1,big\n")
    with pytest.raises(TraceFormatError, match=r"bad.csv:3: expected a number in column 'input_size', got 'big'"):
        read_trace(path)
    path.write_text("category,memory,input_size,input_size_mb\na,1,2,2\n")
    with pytest.raises(TraceFormatError, match=r"bad.csv:1: expected one column for 'input_size'"):
        read_trace(path)


def test_lfm_trace_features_round_trip(tmp_path: Path) -> None:
    trace = Trace(tmp_path / "t.jsonl")
    trace.append(make_row("align", {"memory": 800.0, "wall_time": 3.0}, "ok", input_size=350.0, task_id=1))
    trace.append(make_row("align", {"memory": 900.0, "wall_time": 3.0}, "ok", task_id=2))
    df = read_trace(trace.path)
    assert df["input_size"].dtype == np.float64
    assert df["input_size"][0] == 350.0 and math.isnan(df["input_size"][1])


def test_wfcommons_14_input_files(traces_dir: Path) -> None:
    name = "blast-medium-001.json"
    doc = json.loads((traces_dir / name).read_text())
    df = read_trace(traces_dir / name)
    for i in (0, 1, len(df) - 1):
        files = doc["workflow"]["tasks"][i]["files"]
        expected = sum(f["sizeInBytes"] for f in files if f["link"] == "input") / MB
        assert df["input_size"][i] == pytest.approx(expected)
    assert (df["input_size"] >= 0).all()


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "instance.json"
    path.write_text(json.dumps(doc))
    return path


def test_wfcommons_14_variants(tmp_path: Path) -> None:
    tasks = [{"name": "a_ID01", "runtimeInSeconds": 1, "memoryInBytes": MB,
              "files": [{"link": "input", "name": "x", "sizeInBytes": 3 * MB},
                        {"link": "input", "name": "y", "sizeInBytes": MB},
                        {"link": "output", "name": "z", "sizeInBytes": 50 * MB}]},
             {"name": "b_ID02", "runtimeInSeconds": 1, "memoryInBytes": MB,
              "files": [{"link": "input", "name": "old", "size": 2048}]},       # before sizeInBytes: kB
             {"name": "c_ID03", "runtimeInSeconds": 1, "memoryInBytes": MB, "files": []},
             {"name": "d_ID04", "runtimeInSeconds": 1, "memoryInBytes": MB}]
    df = read_trace(_write(tmp_path, {"schemaVersion": "1.4", "workflow": {"tasks": tasks}}))
    assert df["input_size"].tolist()[:3] == [4.0, pytest.approx(2048 * 1000 / MB), 0.0]
    assert math.isnan(df["input_size"][3])
    tasks[0]["files"][1]["sizeInBytes"] = "big"
    with pytest.raises(TraceFormatError, match=r"workflow.tasks\[0\].files\[1\].sizeInBytes: expected a number"):
        read_trace(_write(tmp_path, {"schemaVersion": "1.4", "workflow": {"tasks": tasks}}))


def test_wfcommons_15_input_files(tmp_path: Path) -> None:
    doc = {"schemaVersion": "1.5", "workflow": {
        "specification": {
            "tasks": [{"name": "split", "id": "t1", "parents": [], "children": ["t2"], "inputFiles": ["in"],
                       "outputFiles": ["c1", "c2"]},
                      {"name": "align", "id": "t2", "parents": ["t1"], "children": [], "inputFiles": ["c1", "c2"]}],
            "files": [{"id": "in", "sizeInBytes": 10 * MB}, {"id": "c1", "sizeInBytes": MB},
                      {"id": "c2", "sizeInBytes": 2 * MB}]},
        "execution": {"makespanInSeconds": 1, "executedAt": "2024-01-01T00:00:00Z", "tasks": [
            {"id": "t1", "runtimeInSeconds": 1, "memoryInBytes": MB},
            {"id": "t2", "runtimeInSeconds": 1, "memoryInBytes": MB}]}}}
    assert read_trace(_write(tmp_path, doc))["input_size"].tolist() == [10.0, 3.0]
    doc["workflow"]["specification"]["tasks"][1]["inputFiles"].append("missing")
    with pytest.raises(TraceFormatError, match=r"workflow.specification.tasks\[1\].inputFiles\[2\]: "
                                               r"expected a file id declared in workflow.specification.files"):
        read_trace(_write(tmp_path, doc))


def test_nextflow_rchar_is_the_input_size_proxy() -> None:
    df = read_trace(DATA / "nextflow_trace.txt")
    assert df["input_size"].notna().any()
    assert df["input_size"].equals(df["bytes_read"])


def test_replay_passes_trace_features(tmp_path: Path) -> None:
    """The features read here reach predictors through replay (predictors.replay reads input_size)."""
    df = predictors.synthetic("input-linear", 50, seed=1)
    path = tmp_path / "f.csv"
    df.to_csv(path, index=False)
    back = read_trace(path)
    assert np.allclose(back["input_size"], df["input_size"])
    seen = []

    class Spy(predictors.create("max-seen").__class__):
        def observe(self, category, resources, *, features=None):
            seen.append(dict(features or {}))
            return super().observe(category, resources, features=features)

    predictors.replay(back, Spy())
    assert [f["input_size"] for f in seen] == pytest.approx(back["input_size"].tolist())
