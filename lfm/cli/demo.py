"""``lfm demo``: the demonstration workflow (see :mod:`lfm.demo`)."""
from lfm.demo.cli import configure
from lfm.demo.cli import run as main

__all__ = ["configure", "main"]
