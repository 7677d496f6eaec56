"""The demo (``python -m lfm.demo``): a small run end to end, its workload and its options."""
from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lfm.demo import main
from lfm.demo.workload import SIZE_CLASSES, simulate, simulation_memory, workflow

REPO = Path(__file__).resolve().parents[1]


def _demo(tmp_path: Path, *args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lfm.demo", "--out", str(tmp_path / "out"), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)


def _table(stdout: str) -> dict[str, list[str]]:
    """The printed comparison: policy -> its cells."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("policy"))
    assert "makespan (s)" in lines[start] and "memory AE" in lines[start]
    rows = {}
    for line in lines[start + 2:]:
        if not line.strip() or not re.match(r"^\S+\s+\d", line):
            break
        cells = line.split()
        rows[cells[0]] = cells[1:]
    return rows


def _default_predictor() -> str:
    import argparse

    from lfm.demo import configure
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.get_default("predictor")


@pytest.mark.slow
def test_small_demo_prints_the_comparison_and_writes_the_files(tmp_path):
    done = _demo(tmp_path, "--tasks", "10")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = _table(done.stdout)
    mine = _default_predictor()
    assert mine == "auto"
    assert list(rows) == [mine, "fixed-2000MB", "one-per-worker"]
    # columns: makespan, tasks, attempts, retries, memory AE, cores AE, peak memory, failed
    for policy, cells in rows.items():
        makespan, tasks, attempts, retries = float(cells[0]), int(cells[1]), int(cells[2]), int(cells[3])
        assert makespan > 0 and tasks == 10 and attempts == tasks + retries, (policy, cells)
        assert cells[-1] == "0", f"{policy}: calls failed for good\n{done.stdout}"
    # declared resources and whole workers are hard limits that these calls fit: no retry
    assert rows["one-per-worker"][3] == "0" and rows["fixed-2000MB"][3] == "0"
    # the whole machine (GBs) for calls of tens to hundreds of MB: a few percent at most
    assert float(rows["one-per-worker"][4]) < 0.2
    # 2,000 MB for calls of 35-650 MB wastes most of it; learnt labels waste less
    assert float(rows["fixed-2000MB"][4]) < 0.35
    assert float(rows[mine][4]) > 2 * float(rows["one-per-worker"][4])

    out = tmp_path / "out"
    assert str(out.resolve()) in done.stdout
    for other in ("fixed-2000MB", "one-per-worker"):
        assert re.search(rf"{mine} vs {other}: makespan [\d.]+x (shorter|longer), memory efficiency "
                         rf"[\d.]+x (higher|lower), \d+ retries against \d+", done.stdout), done.stdout
    for name in (f"labels-over-time-{mine}.png", "memory-of-calls.png", "efficiency-per-policy.png"):
        png = out / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000, name
        assert name in done.stdout
    table = pd.read_csv(out / "comparison.csv")
    assert list(table["policy"]) == [mine, "fixed-2000MB", "one-per-worker"]
    attempts = pd.read_csv(out / f"attempts-{mine}.csv")
    assert attempts["task"].nunique() == 10
    assert set(attempts["category"]) == {"inference", "simulate"}
    assert (attempts["alloc_memory"] > 0).all() and (attempts["memory"] > 0).all()
    fixed = pd.read_csv(out / "attempts-fixed-2000MB.csv")
    assert (fixed["alloc_memory"] == 2000).all() and (fixed["alloc_cores"] == 1).all()
    # the progress line on stderr: tasks done, retries, current labels per category
    assert re.search(rf"{mine} .*10/10 tasks, \d+ retries \| inference: .*MB \| simulate: .*MB",
                     done.stderr), done.stderr


def test_workflow_is_deterministic_and_mixes_both_categories():
    calls = workflow(60, seed=3)
    assert calls == workflow(60, seed=3)
    assert calls != workflow(60, seed=4)
    assert len(calls) == 60
    kinds = [c for c, _ in calls]
    assert 0.4 < kinds.count("inference") / 60 < 0.9 and "simulate" in kinds
    molecules = [a for c, a in calls if c == "simulate"]
    assert len(set(molecules)) == len(molecules)
    with pytest.raises(ValueError, match="tasks must be >= 0"):
        workflow(-1)


def test_simulation_memory_varies_within_the_size_classes():
    sizes = [simulation_memory(m) for m in range(300)]
    assert sizes == [simulation_memory(m) for m in range(300)]
    low, high = SIZE_CLASSES[0][1], SIZE_CLASSES[-1][2]
    assert all(low <= s <= high for s in sizes)
    for _, lo, hi in SIZE_CLASSES:  # every class occurs
        assert any(lo <= s <= hi for s in sizes)


@pytest.mark.slow
def test_a_simulation_uses_the_memory_it_announces():
    from lfm.monitor import run_call

    molecule = next(m for m in range(100) if simulation_memory(m) > 500)
    _, res = run_call(simulate, (molecule,), kwargs={"seconds_per_gb": 0.2})
    extra = res["memory"] - simulation_memory(molecule)
    assert 0 < extra < 120, (res["memory"], simulation_memory(molecule))  # + the interpreter and numpy


@pytest.mark.parametrize("args, message", [
    (["--tasks", "0"], "--tasks must be at least 1"),
    (["--predictor", "nope"], "unknown predictor 'nope'; known predictors: .*greedy"),
    (["--predictor", "oracle"], "the oracle is for replay only"),
])
def test_bad_options_are_refused_with_a_clear_message(args, message, capsys, tmp_path):
    assert main([*args, "--out", str(tmp_path)]) == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.slow
@pytest.mark.workqueue
def test_demo_on_local_work_queue_workers(tmp_path):
    from lfm.executors import work_queue_available

    ok, why = work_queue_available()
    if not ok:
        pytest.skip(why)
    done = _demo(tmp_path, "--backend", "workqueue", "--tasks", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Work Queue worker" in done.stdout and "on the workqueue backend" in done.stdout
    rows = _table(done.stdout)
    assert list(rows) == [_default_predictor(), "fixed-2000MB", "one-per-worker", "wq-autolabel"]
    assert all(int(cells[1]) == 4 and cells[-1] == "0" for cells in rows.values()), done.stdout
    assert "configured as Parsl's WorkQueueExecutor(autolabel=True) configures it" in done.stdout
    assert (tmp_path / "out" / "efficiency-per-policy.png").stat().st_size > 20_000
    raw = pd.read_csv(tmp_path / "out" / "attempts-wq-autolabel.csv")
    assert len(raw) == 4 and (raw["alloc_memory"] > 0).all()  # as Work Queue granted it


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_redraws_in_place_on_a_terminal_and_throttles_elsewhere():
    from lfm.demo.runs import Progress, describe_label

    labels = {"simulate": describe_label(
        {"memory": {"buckets": [(190.4, 0.5), (380.0, 0.3), (650.2, 0.2)]}, "cores": {"buckets": []}},
        {"cores": 1.0, "memory": 1000.0})}
    assert labels["simulate"] == "1.00 cores, memory ≤ 190/380/650 MB"

    tty = _Terminal()
    bar = Progress("greedy", 10, tty)
    bar.update(3, 1, labels)
    bar.update(10, 2, labels, final=True)
    text = tty.getvalue()
    assert text.count("\r\x1b[K") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "3/10 tasks, 1 retries" in text and "10/10 tasks, 2 retries | simulate: 1.00 cores" in text

    pipe = io.StringIO()
    bar = Progress("greedy", 10, pipe, every=60)
    for done in range(10):
        bar.update(done, 0, labels)
    bar.update(10, 0, labels, final=True)
    lines = pipe.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in pipe.getvalue()  # the first update, then the final one
    assert lines[-1].startswith("greedy        [####################] 10/10 tasks")
