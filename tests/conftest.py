"""Shared test fixtures.

``LFM_REQUIRE_WORKQUEUE=1`` (set by ``.ci/run``) turns a skipped test marked
``workqueue`` into a failure, so CI cannot pass without exercising real Work Queue.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``../shared`` beside the repository (or ``$LFM_SHARED``)."""
    return Path(os.environ.get("LFM_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def traces_dir() -> Path:
    path = shared_dir() / "traces"
    if not path.is_dir():
        pytest.skip(f"public traces not found at {path} (set LFM_SHARED)")
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and os.environ.get("LFM_REQUIRE_WORKQUEUE") == "1"
            and item.get_closest_marker("workqueue") is not None):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"LFM_REQUIRE_WORKQUEUE=1 but a Work Queue test was skipped: {reason}"
