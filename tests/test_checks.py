"""The shared checks: one positive-number validator, one read-exactly helper."""
from __future__ import annotations

import io
import math
import socket
import threading

import numpy as np
import pytest

from lfm.checks import positive, read_exactly


@pytest.mark.parametrize("value", [1, 2.5, np.float32(3), np.int64(7)])
def test_positive_accepts_positive_numbers(value):
    assert positive(value, "x") == float(value)


@pytest.mark.parametrize("value,message", [
    (0, "x must be a positive number \\(MB\\), got 0"),
    (-1.5, "positive number"),
    (math.nan, "positive number"),
    (math.inf, "x must be a finite positive number \\(MB\\), got inf"),
    (True, "x must be a number \\(MB\\), got True"),
    ("5", "x must be a number \\(MB\\), got '5'"),
    (None, "must be a number"),
])
def test_positive_refuses_the_rest_naming_what_and_why(value, message):
    with pytest.raises(ValueError, match=message):
        positive(value, "x", unit="MB")


def test_positive_may_allow_infinity():
    assert positive(math.inf, "max_output_mb", allow_inf=True) == math.inf
    with pytest.raises(ValueError, match="inf for no limit"):
        positive(-math.inf, "max_output_mb", allow_inf=True)


def test_read_exactly_loops_over_short_reads_and_stops_at_the_end():
    mine, theirs = socket.socketpair()
    payload = bytes(range(256)) * 4096  # 1 MB: many short reads

    def send():
        for at in range(0, len(payload), 1000):
            theirs.sendall(payload[at:at + 1000])
        theirs.close()

    sender = threading.Thread(target=send)
    sender.start()
    assert read_exactly(mine.recv_into, len(payload) - 10) == payload[:-10]
    assert read_exactly(mine.recv_into, 20) is None  # only 10 left before the end
    sender.join(10)
    mine.close()
    stream = io.BufferedReader(io.BytesIO(b"abcdef"))
    assert read_exactly(stream.readinto, 4) == b"abcd"
    assert read_exactly(stream.readinto, 4) is None
    assert read_exactly(stream.readinto, 0) == b""
