"""``lfm replay`` end to end, in a subprocess like a user runs it."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd


def lfm(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lfm", "replay", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_table_csv_and_plot(traces_dir, tmp_path) -> None:
    out_csv, out_png = tmp_path / "rows.csv", tmp_path / "replay.png"
    r = lfm(str(traces_dir / "bioblast.csv"), "-p", "max-seen", "-p", "min-waste",
            "--by", "both", "--csv", str(out_csv), "--plot", str(out_png))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["trace", "grouping", "predictor", "seeds", "AE_time", "AE_count",
                                "waste_MBs", "retries", "tasks_retried", "tasks", "tasks_per_s"]
    assert len(lines) == 5
    # the reference numbers (anchors) of min-waste on bioblast, per category and as one group
    assert any(line.split()[:6] == ["bioblast.csv", "per-category", "min-waste", "1", "0.5545", "0.5275"]
               for line in lines)
    assert any(line.split()[:6] == ["bioblast.csv", "one", "min-waste", "1", "0.5178", "0.5232"]
               for line in lines)
    rows = pd.read_csv(out_csv)
    assert len(rows) == 4 and set(rows["seed"]) == {1}
    for grouping in ("one", "per-category"):
        png = tmp_path / f"replay-bioblast.csv-{grouping}.png"
        assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_synthetic_seeds_and_formats() -> None:
    r = lfm("synthetic:bimodal:300:2", "-p", "quantile", "-p", "oracle", "--seeds", "3", "--format", "csv")
    assert r.returncode == 0, r.stderr
    from io import StringIO
    table = pd.read_csv(StringIO(r.stdout))
    assert list(table["predictor"]) == ["quantile", "oracle"]
    assert (table["seeds"] == 3).all() and (table["tasks"] == 300).all()
    assert table.set_index("predictor").loc["oracle", "AE_time"] == 1.0
    md = lfm("synthetic:normal:50", "-p", "max-seen", "--format", "markdown")
    assert md.returncode == 0 and md.stdout.startswith("| trace | grouping |")


def test_errors(tmp_path) -> None:
    r = lfm(str(tmp_path / "missing.csv"), "-p", "greedy")
    assert r.returncode == 2 and "cannot read trace" in r.stderr and "missing.csv" in r.stderr
    assert "Traceback" not in r.stderr
    r = lfm("synthetic:normal:10", "-p", "nope")
    assert r.returncode == 2 and "unknown predictor 'nope'" in r.stderr and "max-seen" in r.stderr
    r = lfm("synthetic:gauss:10")
    assert r.returncode == 2 and "known kinds: normal" in r.stderr
    r = lfm("synthetic:normal:ten")
    assert r.returncode == 2 and "synthetic:KIND:N[:SEED]" in r.stderr
    r = lfm("synthetic:normal:10", "--max", "memory")
    assert r.returncode == 2 and "RESOURCE=VALUE" in r.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("category,cores\na,1\n")
    r = lfm(str(bad), "-p", "max-seen")
    assert r.returncode == 2 and "memory" in r.stderr and "Traceback" not in r.stderr
