"""Reading JSON the way trace producers actually write it."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from lfm.trace.errors import TraceFormatError

# cctools' JSON printer escapes single quotes as \' (not valid JSON); undo it
# unless the backslash is itself escaped.
_BAD_QUOTE_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\'")


def fix_quote_escapes(text: str) -> str:
    """``text`` with cctools' ``\\'`` escapes made valid JSON (a no-op without them)."""
    return _BAD_QUOTE_ESCAPE.sub(r"\1'", text) if "\\'" in text else text


def iter_json_values(text: str, path: str, what: str = "a JSON summary") -> Iterator[tuple[int, Any]]:
    """(line, value) of each JSON value in ``text``: JSON lines, one pretty-printed
    document, or documents written back to back without a newline (as Work
    Queue's ``*.summaries`` can be)."""
    text = fix_quote_escapes(text)
    decoder = json.JSONDecoder()
    pos, size, line, counted = 0, len(text), 1, 0
    while True:
        while pos < size and text[pos].isspace():
            pos += 1
        if pos >= size:
            return
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            if not text[exc.pos:].strip():  # cut short: point at where the value starts
                start = line + text.count("\n", counted, pos)
                raise TraceFormatError(path, start, f"expected {what}, got a JSON value that is cut short "
                                                    f"(starts on line {start}, the text ends first)") from None
            raise TraceFormatError(path, exc.lineno, f"expected {what}, got invalid JSON "
                                                     f"({exc.msg} at column {exc.colno})") from None
        line += text.count("\n", counted, pos)
        counted = pos
        yield line, value
        pos = end


def first_json_value(text: str) -> Any:
    """The first JSON value in ``text`` (ValueError if it does not start with one)."""
    text = fix_quote_escapes(text)
    return json.JSONDecoder().raw_decode(text.lstrip())[0]
