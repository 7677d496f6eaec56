"""The WORKS'21 k-means artifact's resources_all.txt: detection, conversion, malformed input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import predictors
from lfm.trace import TraceFormatError, detect_format, read_trace

FIXTURE = Path(__file__).parent / "data" / "works21_resources_all.txt"
HEADER = "taskid -- core -- memory -- virtual_memory -- disk -- time -- average_cores -- tag"


def test_fixture_detected_and_converted() -> None:
    assert detect_format(FIXTURE) == "works21"
    df = read_trace(FIXTURE)
    lines = FIXTURE.read_text().splitlines()[1:]
    assert len(df) == len(lines) == 24
    first = lines[0].split(" -- ")
    row = df.iloc[0]
    assert row["task_id"] == first[0] and row["category"] == first[7]
    assert row["cores_peak"] == float(first[1]) and row["memory"] == float(first[2])
    assert row["virtual_memory"] == float(first[3]) and row["disk"] == float(first[4])
    assert row["wall_time"] == float(first[5]) and row["cores"] == float(first[6])
    assert row["cpu_time"] == pytest.approx(float(first[5]) * float(first[6]))
    assert (df["status"] == "ok").all()
    assert sorted(df["category"].unique()) == ["1", "2", "3"]
    assert df["task_id"].tolist() == [str(i) for i in range(1, 25)]   # file order
    # replayable per category
    r = predictors.replay(df, "max-seen").summary.iloc[0]
    assert r["tasks"] == 24 and 0 < r["AE_time"] <= 1


def test_variants(tmp_path: Path) -> None:
    # the artifact's own writer puts the tag value at the end of the header line too
    quirk = tmp_path / "resources_all.txt"
    quirk.write_text(HEADER.replace("-- tag", "-- 1") + "\n1 -- 1 -- 100 -- 200 -- 5 -- 2.5 -- 0.9 -- 1\n\n"
                     "2 -- 1 -- -1 -- 200 -- 5 -- 2.5 -- 0.9 -- 4\n")
    df = read_trace(quirk)
    assert df["category"].tolist() == ["1", "4"]
    assert np.isnan(df["memory"].iloc[1])          # a negative "not measured" value
    # no tag field: the category option
    untagged = tmp_path / "untagged.txt"
    untagged.write_text(HEADER.rsplit(" -- ", 1)[0] + "\n7 -- 2 -- 300 -- 400 -- 1 -- 10 -- 1.5\n")
    assert read_trace(untagged)["category"].tolist() == ["default"]
    assert read_trace(untagged, category="colmena")["category"].tolist() == ["colmena"]
    assert read_trace(untagged, format="works21")["memory"].tolist() == [300.0]


@pytest.mark.parametrize("content, line, message", [
    (HEADER + "\n1 -- 1 -- 100 -- 200 -- 5 -- 2.5 -- 0.9 -- 1\n2 -- 1 -- 100 -- 200 -- 5 -- 2.5\n", 3,
     "expected 8 fields separated by ' -- ' like the header, got 6"),
    (HEADER + "\n1 -- 1 -- 100MB -- 200 -- 5 -- 2.5 -- 0.9 -- 1\n", 2, "expected a number in field 'memory', got '100MB'"),
    (HEADER + "\n1 -- 1 -- 100 -- 200 -- 5 -- nan -- 0.9 -- 1\n", 2, "expected a finite number in field 'time'"),
    (HEADER + "\n1 -- 1 -- 100 -- 200 -- 5 -- 2.5 -- 0.9 -- \n", 2, "expected a tag"),
    ("taskid -- core -- memory -- disk -- time -- average_cores -- tag -- x\n1 -- 1 -- 1 -- 1 -- 1 -- 1 -- a -- b\n",
     1, "expected the header taskid -- core -- memory -- virtual_memory"),
])
def test_malformed(tmp_path: Path, content: str, line: int, message: str) -> None:
    path = tmp_path / "resources_all.txt"
    path.write_text(content)
    with pytest.raises(TraceFormatError) as info:
        read_trace(path)
    assert info.value.path == str(path) and info.value.line == line, str(info.value)
    assert str(info.value).startswith(f"{path}:{line}: expected"), str(info.value)
    assert message in str(info.value), str(info.value)


def test_forced_format_on_other_content(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("category,memory\na,1\n")
    with pytest.raises(TraceFormatError, match=r"t.csv:1: expected the header taskid -- core"):
        read_trace(path, format="works21")
    empty = tmp_path / "e.txt"
    empty.write_text("")
    with pytest.raises(TraceFormatError, match="expected a works21 trace, got an empty file"):
        read_trace(empty, format="works21")
