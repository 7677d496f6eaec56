"""When local Work Queue workers may start the runner without ``site``
(:func:`lfm.executors.pystart.site_free_paths`): only when ``site`` would do
nothing but add paths."""
from __future__ import annotations

import sys

import pytest

from lfm.executors.pystart import site_free_paths

DISTUTILS_SHIM = ("import os; var = 'SETUPTOOLS_USE_DISTUTILS'; enabled = os.environ.get(var, 'local') "
                  "== 'local'; enabled and __import__('_distutils_hack').add_shim(); ")


@pytest.fixture
def site_dir(tmp_path, monkeypatch):
    """An empty site-packages directory, importable (as site would make it),
    with no sitecustomize anywhere."""
    directory = tmp_path / "site-packages"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    return directory


def editable(site_dir, name, mapping):
    module = f"__editable___{name}_1_0_finder"
    (site_dir / f"{module}.py").write_text(f"MAPPING = {mapping!r}\n\ndef install():\n    pass\n")
    (site_dir / f"__editable__.{name}-1.0.pth").write_text(f"import {module}; {module}.install()")
    sys.modules.pop(module, None)


def test_paths_and_the_distutils_shim_need_nothing(site_dir):
    (site_dir / "paths.pth").write_text("# a comment\n/somewhere/else\nrelative\n")
    (site_dir / "distutils-precedence.pth").write_text(DISTUTILS_SHIM)
    assert site_free_paths([str(site_dir)]) == []


def test_editable_installs_give_their_roots(site_dir, tmp_path):
    root = tmp_path / "project"
    editable(site_dir, "proj", {"proj": str(root / "proj"), "tool": str(root / "tool.py"),
                                "other": str(tmp_path / "src" / "other")})
    assert site_free_paths([str(site_dir)]) == [str(root), str(tmp_path / "src")]


def test_an_editable_install_under_another_name_keeps_site(site_dir, tmp_path):
    editable(site_dir, "renamed", {"renamed": str(tmp_path / "package_dir")})
    assert site_free_paths([str(site_dir)]) is None


@pytest.mark.parametrize("line", [
    "import os; os.environ['SET_BY_PTH'] = '1'",
    "import _virtualenv",
    "import\tsomething",
])
def test_code_in_a_pth_file_keeps_site(site_dir, line):
    (site_dir / "paths.pth").write_text("/somewhere\n")
    (site_dir / "zz-hook.pth").write_text(line + "\n")
    assert site_free_paths([str(site_dir)]) is None


@pytest.mark.parametrize("name", ["sitecustomize", "usercustomize"])
def test_a_customize_module_keeps_site(site_dir, name):
    (site_dir / f"{name}.py").write_text("")
    assert site_free_paths([str(site_dir)]) is None


def test_unreadable_or_missing_directories(site_dir, tmp_path):
    assert site_free_paths([str(tmp_path / "missing")]) == []
    (site_dir / "bad.pth").write_bytes(b"\xff\xfe\x00 not text")
    assert site_free_paths([str(site_dir)]) is None


def test_this_interpreter_is_answered_without_error():
    paths = site_free_paths()
    assert paths is None or all(isinstance(p, str) for p in paths)
