"""The error every trace reader raises on malformed input."""
from __future__ import annotations

import os


class TraceFormatError(ValueError):
    """A trace file does not hold what its format requires.

    The message reads ``FILE:LINE: expected ..., got ...`` (``FILE: ...`` when
    the problem is not on one line, e.g. an empty file). For JSON documents the
    location is a JSON path such as ``workflow.tasks[3].memoryInBytes``.

    Attributes: ``path`` (str), ``line`` (1-based line number, a JSON path
    string, or None), ``reason`` (the message without the location).
    """

    def __init__(self, path: str | os.PathLike, line: int | str | None, reason: str) -> None:
        self.path = os.fspath(path)
        self.line = line
        self.reason = reason
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):
        return (TraceFormatError, (self.path, self.line, self.reason))


def describe(value: object, limit: int = 60) -> str:
    """A short ``repr`` of an offending value for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
