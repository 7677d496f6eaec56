"""lfm.pack without Work Queue: analysis, static scan, spec files, package
building and the worker-side unpacking (run for real in subprocesses)."""
from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from lfm.pack import Environments, PackageCache, Spec, build_package, scan_file, scan_function, spec_from_imports
from lfm.pack.deps import missing_module
from lfm.pack.unpack import unpack
import pack_app

TESTS = Path(__file__).resolve().parent


def test_imports_map_to_exact_versions_and_local_sources():
    import numpy
    import pack_helper
    spec = spec_from_imports({"numpy": numpy.__file__, "pack_helper": pack_helper.__file__,
                              "json": None, "os": None})
    assert spec.distributions["numpy"] == metadata.version("numpy")
    assert spec.distributions["cloudpickle"] == metadata.version("cloudpickle")  # the runner's
    assert spec.local["pack_helper"] == str(TESTS / "pack_helper.py")
    assert "json" not in spec.distributions and "os" not in spec.local  # stdlib left out
    # lfm is installed in editable mode: shipped from its source tree
    assert "lfm" in spec.editable and os.path.isdir(spec.local["lfm"])
    bare = spec_from_imports({"numpy": None}, runner=False)
    assert set(bare.distributions) == {"numpy"} and not bare.local


def test_static_scan_follows_local_modules():
    found = scan_function(pack_app.run)
    assert {"pack_helper", "numpy", "pack_app"} <= set(found)  # numpy via the helper
    assert "importlib" not in found
    script = scan_file(str(TESTS / "pack_app.py"))
    assert "pack_app" not in script and "numpy" in script


def test_static_scan_reports_bad_source(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nx = (\n")
    with pytest.raises(ValueError, match=r"bad.py:\d+"):
        scan_file(str(bad))


def test_spec_writes_poncho_json_and_requirements_and_reads_back(tmp_path):
    spec = spec_from_imports({"numpy": None, "pack_helper": str(TESTS / "pack_helper.py")})
    data = spec.to_poncho()
    assert data["conda"]["dependencies"][0] == f"python={sys.version_info[0]}.{sys.version_info[1]}"
    assert f"numpy=={metadata.version('numpy')}" in data["pip"]
    assert data["conda"]["dependencies"][2] == {"pip": data["pip"]}  # where Poncho reads them
    assert f"numpy=={metadata.version('numpy')}" in spec.to_requirements().splitlines()
    path = tmp_path / "spec.json"
    path.write_text(spec.to_json())
    again = Spec.read(str(path))
    assert again.distributions == spec.distributions and again.local == spec.local
    assert again.digest() == spec.digest()
    # Poncho's own layout: pip entries only inside conda's dependencies
    path.write_text(json.dumps({"conda": {"channels": [], "dependencies": [
        "python=3.11", {"pip": [f"numpy=={metadata.version('numpy')}"]}]}}))
    assert Spec.read(str(path)).distributions == {"numpy": metadata.version("numpy")}


def test_spec_errors_name_the_problem(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"pip": ["numpy>=1"]}')
    with pytest.raises(ValueError, match=r"pip\[0\].*name==version"):
        Spec.read(str(path))
    path.write_text('{"pip": [], "wheels": 1}')
    with pytest.raises(ValueError, match="unknown key"):
        Spec.read(str(path))
    path.write_text('{"pip": [\n')
    with pytest.raises(ValueError, match=r"s.json:\d+: not JSON"):
        Spec.read(str(path))
    with pytest.raises(ValueError, match="not installed"):
        spec_from_imports({}, extra_pkgs=["no-such-distribution-xyz"])
    with pytest.raises(ValueError, match="installed"):
        spec_from_imports({}, extra_pkgs=["numpy==0.0.1"])


def test_extra_pkgs_bring_what_they_require():
    spec = spec_from_imports({}, extra_pkgs=["pandas"])
    assert "pandas" in spec.distributions and "numpy" in spec.distributions
    assert "python-dateutil" in spec.distributions


def test_package_is_content_addressed_deterministic_and_cached(tmp_path):
    spec = spec_from_imports({"pack_helper": str(TESTS / "pack_helper.py")}, extra_pkgs=["cloudpickle"])
    a, b = build_package(spec, str(tmp_path / "a.tar.gz")), build_package(spec, str(tmp_path / "b.tar.gz"))
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    assert a.digest == b.digest and a.size_mb > 0 and a.files > 10
    with tarfile.open(a.path) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("lfm-env.json"))
    assert "site/pack_helper.py" in names and "site/lfm/executors/runner.py" in names
    assert "site/cloudpickle/__init__.py" in names
    assert any(n.startswith("site/cloudpickle-") and n.endswith(".dist-info/RECORD") for n in names)
    assert manifest["digest"] == spec.digest()
    cache = PackageCache(str(tmp_path / "cache"))
    first, second = cache.get(spec), PackageCache(str(tmp_path / "cache")).get(spec)
    assert first.built and not second.built and first.path == second.path
    assert os.path.basename(first.path) == f"lfm-env-{spec.digest()[:16]}.tar.gz"


def test_a_changed_local_source_changes_the_digest(tmp_path):
    helper = tmp_path / "helper_mod.py"
    helper.write_text("X = 1\n")
    spec = spec_from_imports({"helper_mod": str(helper)}, runner=False)
    before = spec.digest()
    helper.write_text("X = 2\n")
    os.utime(helper, ns=(1, 1))
    assert spec.digest() != before


def test_environments_grow_per_category_and_fall_back_to_the_scan():
    book = Environments()
    book.note("run", pack_app.run)
    assert book.environment("run").source == "static scan"
    assert book.observe("run", imports={"numpy": None}) is True
    spec = book.environment("run")
    assert spec.source == "run" and "numpy" in spec.distributions and "pandas" not in spec.distributions
    assert book.observe("run", imports={"numpy": None}) is False
    assert book.observe("run", imports={"pandas": None}) is True
    assert "pandas" in book.environment("run").distributions
    with pytest.raises(KeyError, match="known categories: run"):
        book.environment("other")


@pytest.mark.timeout(120)
def test_local_backend_measures_each_categorys_environment_and_traces_it(tmp_path):
    from lfm.executors import AutolabelExecutor
    trace = tmp_path / "trace.jsonl"
    with AutolabelExecutor(backend="local", predictor="greedy", trace=str(trace)) as ex:
        with pytest.raises(KeyError, match="no call of category 'run' was submitted"):
            ex.environment("run")
        assert ex.submit(pack_app.run, 10).result(timeout=60) == 45.0
        spec = ex.environment("run")
    # measured in the call's process (not the static scan), with exact versions
    assert spec.source == "run"
    numpy = f"numpy=={metadata.version('numpy')}"
    assert spec.distributions["numpy"] == metadata.version("numpy")
    assert {"pack_app", "pack_helper"} <= set(spec.local)
    rows = [json.loads(line) for line in trace.read_text().splitlines() if line.strip()]
    assert len(rows) == 1 and rows[0]["status"] == "ok"
    assert numpy in rows[0]["environment"].split() and "+pack_helper" in rows[0]["environment"], rows


def test_a_categorys_environment_is_its_own_modules_not_another_ones(tmp_path, monkeypatch):
    # each module of the functions called gets a fork server of its own: a call of a
    # plain module after one of a module importing numpy must not measure numpy too
    from lfm.executors import AutolabelExecutor
    (tmp_path / "lfm_test_plain.py").write_text("def two():\n    return 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import lfm_test_plain
    with AutolabelExecutor(backend="local", predictor="max-seen") as ex:
        assert ex.submit(pack_app.run, 10).result(timeout=60) == 45.0
        assert ex.submit(lfm_test_plain.two).result(timeout=60) == 2
        assert "numpy" in ex.environment("run").distributions
        plain = ex.environment("two")
    assert "numpy" not in plain.distributions and "lfm_test_plain" in plain.local, plain
    assert not {"pack_app", "pack_helper"} & set(plain.local), plain


def test_missing_module_is_read_from_import_errors():
    assert missing_module(ModuleNotFoundError("No module named 'scipy.linalg'", name="scipy.linalg")) == "scipy"
    wrapped = RuntimeError("the runner could not load the call: ModuleNotFoundError(\"No module named 'helper'\")")
    assert missing_module(wrapped) == "helper"
    assert missing_module(ValueError("x")) is None


UNPACK = str(TESTS.parent / "lfm" / "pack" / "unpack.py")


def bare(env_extra=None):
    return {"PATH": "/usr/bin:/bin", **(env_extra or {})}


@pytest.mark.timeout(120)
def test_unpack_runs_a_command_inside_with_the_stdlib_only(tmp_path):
    spec = spec_from_imports({"pack_helper": str(TESTS / "pack_helper.py")}, extra_pkgs=["numpy"])
    package = build_package(spec, str(tmp_path / "env.tar.gz"))
    root = tmp_path / "root"
    # -I: isolated, no site, no PYTHONPATH of ours: only what the package holds
    code = "import pack_helper, lfm.executors.runner; print(pack_helper.total(4))"
    proc = subprocess.run([sys.executable, "-S", UNPACK, package.path, "--", sys.executable, "-S", "-c", code],
                          capture_output=True, text=True, timeout=100, cwd=tmp_path,
                          env=bare({"LFM_PACK_ROOT": str(root)}))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "6.0" and "lfm-pack: unpacked env.tar.gz" in proc.stderr
    again = subprocess.run([sys.executable, "-S", UNPACK, package.path, "--", "true"], capture_output=True,
                           text=True, timeout=60, env=bare({"LFM_PACK_ROOT": str(root)}))
    assert again.returncode == 0 and "lfm-pack: reused env.tar.gz" in again.stderr


@pytest.mark.timeout(120)
def test_concurrent_unpackings_on_one_worker_do_not_race(tmp_path):
    (tmp_path / "plain_helper.py").write_text("VALUE = 'ok'\n")
    spec = spec_from_imports({"plain_helper": str(tmp_path / "plain_helper.py")}, runner=True)
    package = build_package(spec, str(tmp_path / "env.tar.gz"))
    root = tmp_path / "root"
    procs = [subprocess.Popen([sys.executable, "-S", UNPACK, package.path, "--", sys.executable, "-S", "-c",
                               "import plain_helper, lfm; print(plain_helper.VALUE)"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=bare({"LFM_PACK_ROOT": str(root)})) for _ in range(4)]
    results = [p.communicate(timeout=100) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    assert all(out.strip() == "ok" for out, _ in results)
    assert sum("unpacked" in err for _, err in results) == 1
    assert sorted(os.listdir(root)) == ["env", "env.lock"]


def test_unpack_redoes_a_half_done_unpacking(tmp_path):
    spec = spec_from_imports({"pack_helper": str(TESTS / "pack_helper.py")}, runner=False)
    package = build_package(spec, str(tmp_path / "env.tar.gz"))
    (tmp_path / "root" / "env").mkdir(parents=True)  # no completion marker
    target, seconds = unpack(package.path, str(tmp_path / "root"))
    assert seconds > 0 and os.path.exists(os.path.join(target, "site", "pack_helper.py"))
    assert unpack(package.path, str(tmp_path / "root"))[1] == 0.0


@pytest.mark.timeout(200)
def test_include_python_packs_an_interpreter_that_runs_from_elsewhere(tmp_path):
    from lfm.pack.python import check, why_not
    reason = why_not()
    if reason:
        pytest.skip(f"this interpreter cannot be packed: {reason}")
    spec = spec_from_imports({}, runner=False, include_python=True)
    package = build_package(spec, str(tmp_path / "py.tar.gz"))
    target, _ = unpack(package.path, str(tmp_path / "root"))
    assert check(target) == os.path.join(target, "python")
    with tarfile.open(package.path) as tar:
        names = set(tar.getnames())
    minor = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert f"python/bin/{minor}" in names and f"python/lib/{minor}/os.py" in names
    assert not any("/site-packages/" in n for n in names if n.startswith("python/"))


def test_paths_measured_on_a_worker_are_resolved_here():
    # a worker's unpacked package: numpy's file there is no file of this installation
    spec = spec_from_imports({"numpy": "/worker/lfm-envs/lfm-env-x/site/numpy/__init__.py"}, runner=False)
    assert spec.distributions == {"numpy": metadata.version("numpy")} and not spec.local


def test_unpack_refuses_links_and_escaping_names(tmp_path):
    import io
    for name, kind in (("../evil.py", tarfile.REGTYPE), ("site/link", tarfile.SYMTYPE)):
        archive = tmp_path / "bad.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
            tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
        with pytest.raises(SystemExit, match="refusing member"):
            unpack(str(archive), str(tmp_path / "root"))
        assert not (tmp_path / "evil.py").exists()
