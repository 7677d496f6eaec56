"""Every notebook in ``notebooks/`` runs headless, cell by cell, within its time budget.

The kernel is this interpreter (a kernelspec written to a temporary
``JUPYTER_PATH``), so the test needs no kernel installed beforehand: a clean
clone with ``make test`` runs it. Notebooks are committed with their outputs
stripped; that is checked too.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = "lfm-test-python"
#: seconds a whole notebook may take on a loaded 2-core machine
BUDGET = 120
#: seconds one cell may take before it counts as hung
CELL_TIMEOUT = 90


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory) -> str:
    """A kernelspec that starts this interpreter's ipykernel, visible through JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "lfm tests (this Python)", "language": "python"}))
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(root))
    mp.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    yield KERNEL
    mp.undo()


def test_there_are_notebooks():
    names = [p.name for p in _notebooks()]
    assert names[:3] == ["01-measure.ipynb", "02-prediction-study.ipynb", "03-autolabel.ipynb"]


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    book = nbformat.read(path, as_version=4)
    for i, cell in enumerate(book.cells):
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, \
                f"{path.name} cell {i}: outputs not stripped"


@pytest.mark.slow
@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_notebook_runs(path, kernel_name):
    book = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(book, kernel_name=kernel_name, timeout=CELL_TIMEOUT,
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.monotonic()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell failed:\n{exc}")
    seconds = time.monotonic() - start
    assert seconds < BUDGET, f"{path.name} took {seconds:.0f} s (budget {BUDGET} s)"
    codes = [c for c in book.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in codes)
    errors = [o for c in codes for o in c.outputs if o.get("output_type") == "error"]
    assert not errors
    images = [o for c in codes for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} drew no plot"
