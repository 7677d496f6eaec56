"""input_size (MB) of a call from its arguments, user features, and features in the executor and its trace."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from lfm.executors import AutolabelExecutor, FeatureError, call_features
from lfm.executors.features import MAX_ITEMS, trace_columns
from doubling import Doubling

MB = 2 ** 20
SMALL = {"cores": 2, "memory": 2000, "disk": 2000}


def _file(tmp_path: Path, name: str, size: int) -> Path:
    path = tmp_path / name
    with open(path, "wb") as f:
        f.truncate(size)     # sparse: st_size is what counts, nothing is read
    return path


class FakeParslFile:
    """Parsl's File as lfm sees it: a ``filepath`` attribute (duck typing; Parsl is not imported)."""

    def __init__(self, path: str) -> None:
        self.filepath = path


class NoLocalPath:
    @property
    def filepath(self) -> str:
        raise ValueError("No local_path set")   # what Parsl raises for a remote File


def f(*args, **kwargs):
    return None


def test_files_named_by_arguments(tmp_path: Path) -> None:
    a = _file(tmp_path, "a.bin", 3 * MB)
    b = _file(tmp_path, "b.bin", MB)
    c = _file(tmp_path, "c.bin", 2 * MB)
    out = _file(tmp_path, "out.bin", 50 * MB)
    feats = call_features(f, (str(a), b), {"ref": FakeParslFile(str(c)), "inputs": [FakeParslFile(str(a))],
                                           "outputs": [str(out)], "stdout": str(out)})
    # a counted once although named twice; outputs/stdout are not inputs
    assert feats == {"input_size": pytest.approx(6.0)}
    # inside containers (two levels), directories and missing paths ignored
    feats = call_features(f, ([str(a), (str(b),)], {"x": str(c)}), {"d": str(tmp_path), "m": "no/such/file"})
    assert feats["input_size"] == pytest.approx(6.0)
    assert call_features(f, ("hello", 3, 2.5, None, "x" * 100_000, "a\x00b", NoLocalPath()), {}) == {}


def test_parsl_file_when_parsl_is_installed(tmp_path: Path) -> None:
    files = pytest.importorskip("parsl.data_provider.files")
    a = _file(tmp_path, "a.bin", 2 * MB)
    assert call_features(f, (), {"inputs": [files.File(str(a))]}) == {"input_size": pytest.approx(2.0)}
    assert call_features(f, (files.File("https://example.org/remote.dat"),), {}) == {}


def test_arrays_and_bytes() -> None:
    arr = np.zeros((512, 512))                       # 2 MB of float64
    feats = call_features(f, (arr, b"\0" * MB, bytearray(MB), memoryview(b"\0" * MB)), {})
    assert feats["input_size"] == pytest.approx(5.0)
    assert call_features(f, (np.float64(3.0), np.int64(2)), {}) == {}   # scalars are numbers, not arrays
    pd = pytest.importorskip("pandas")
    assert call_features(f, (pd.Series(np.zeros(MB // 8)),), {})["input_size"] == pytest.approx(1.0)


def test_bounded_and_never_raises() -> None:
    class Hostile:
        def __getattr__(self, name):
            raise RuntimeError("no attributes here")

    assert call_features(f, (Hostile(),), {}) == {}
    many = [b"x"] * (MAX_ITEMS * 3)
    assert call_features(f, (many,), {})["input_size"] < MAX_ITEMS / MB   # inspection stops at the budget


def test_user_features_merge_and_win(tmp_path: Path) -> None:
    a = _file(tmp_path, "a.bin", MB)
    assert call_features(f, (str(a),), {}, {"reads": 7}) == {"input_size": pytest.approx(1.0), "reads": 7.0}
    assert call_features(f, (str(a),), {}, {"input_size": 350}) == {"input_size": 350.0}

    def from_args(path, *, scale=1):
        return {"scaled": os.path.getsize(path) / MB * scale}

    assert call_features(f, (str(a),), {"scale": 3}, from_args) == {"input_size": pytest.approx(1.0),
                                                                    "scaled": pytest.approx(3.0)}


def test_bad_user_features_name_the_callable() -> None:
    def broken(x):
        raise KeyError("size")

    with pytest.raises(FeatureError, match=r"features callable .*broken raised KeyError: 'size' for a call of f"):
        call_features(f, (1,), {}, broken)
    with pytest.raises(FeatureError, match=r"features callable .*<lambda> must give a mapping.*got list"):
        call_features(f, (1,), {}, lambda x: [x])
    with pytest.raises(FeatureError, match=r"features mapping gave size='big'"):
        call_features(f, (), {}, {"size": "big"})
    with pytest.raises(FeatureError, match=r"gave n=nan"):
        call_features(f, (), {}, {"n": float("nan")})


def test_trace_columns_avoid_clashes() -> None:
    assert trace_columns({"input_size": 1.0, "memory": 2.0, "task_id": 3.0, "alloc_x": 4.0, "g": 5.0}, {"g"}) == {
        "input_size": 1.0, "feature_memory": 2.0, "feature_task_id": 3.0, "feature_alloc_x": 4.0, "feature_g": 5.0}


def size_of(path, pad=0):
    return os.path.getsize(path) + pad


class Recording(Doubling):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.predicted, self.observed = [], []

    def predict(self, category, previous=None, exceeded=None, *, features=None):
        self.predicted.append(dict(features or {}))
        return super().predict(category, previous, exceeded, features=features)

    def observe(self, category, resources, *, features=None):
        self.observed.append(dict(features or {}))
        return super().observe(category, resources, features=features)


@pytest.mark.timeout(120)
def test_executor_fills_features_and_traces_them(tmp_path: Path) -> None:
    a = _file(tmp_path, "a.bin", 3 * MB)
    b = _file(tmp_path, "b.bin", MB)
    trace = tmp_path / "trace.jsonl"
    predictor = Recording(first=200)
    with AutolabelExecutor(predictor=predictor, capacity=SMALL, trace=trace) as ex:
        assert ex.submit(size_of, str(a)).result(timeout=60) == 3 * MB
        view = ex.options(category="sized", features=lambda path, pad=0: {"pad": float(pad)})
        assert view.submit(size_of, b, pad=5).result(timeout=60) == MB + 5
        assert ex.submit(size_of, str(b), 0).result(timeout=60) == MB
        with pytest.raises(FeatureError, match="features callable .*bad raised ZeroDivisionError"):
            def bad(path):
                return {"x": 1 / 0}
            ex.options(features=bad).submit(size_of, str(a))
    rows = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [r["input_size"] for r in rows] == pytest.approx([3.0, 1.0, 1.0])
    assert rows[1]["pad"] == 5.0 and rows[1]["category"] == "sized" and "pad" not in rows[0]
    assert predictor.predicted[0] == {"input_size": pytest.approx(3.0)}
    assert predictor.observed[1] == {"input_size": pytest.approx(1.0), "pad": 5.0}
    # the trace reads back with the feature as a float column, ready for replay
    from lfm.trace import read_trace
    assert read_trace(trace)["input_size"].tolist() == pytest.approx([3.0, 1.0, 1.0])
