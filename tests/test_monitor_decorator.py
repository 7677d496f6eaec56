"""@monitored's forms, and limits a mode cannot enforce or does not know."""
from __future__ import annotations

import pytest

from lfm import Resources, monitored
from lfm.monitor import run_call
from lfm.resources import LIMITABLE


@monitored
def bare(x):
    return x * 2


@monitored()
def called(x):
    return x * 3


@pytest.mark.timeout(60)
def test_bare_and_called_decorator_are_the_same():
    result, res = bare(21)
    assert result == 42 and isinstance(res, Resources) and res["wall_time"] > 0
    assert bare.__name__ == "bare" and bare.__wrapped__(1) == 2
    result, res = called(2)
    assert result == 6 and isinstance(res, Resources)


@pytest.mark.timeout(60)
def test_bare_decorator_inline_and_limits_still_as_keywords():
    @monitored(isolate=False, return_resources=False)
    def inline(x):
        return x + 1

    assert inline(1) == 2


@pytest.mark.parametrize("name", ["cores", "disk"])
def test_inline_refuses_limits_it_cannot_enforce(name):
    with pytest.raises(ValueError, match=f"a {name} limit cannot be enforced inline"):
        run_call(len, ("x",), limits={name: 1}, isolate=False)
    with pytest.raises(ValueError, match=f"a {name} limit cannot be enforced inline"):
        monitored(limits={name: 1}, isolate=False)


@pytest.mark.timeout(60)
def test_inline_accepts_what_it_checks_after_the_call():
    result, res = run_call(len, ("abc",), limits={"memory": 100000, "wall_time": 60,
                                                  "virtual_memory": 10**7}, isolate=False)
    assert result == 3


def test_unknown_resource_is_refused_listing_the_known_ones():
    for make in (lambda: monitored(limits={"mem": 1}),
                 lambda: run_call(len, ("x",), limits={"gpu": 1})):
        with pytest.raises(ValueError) as info:
            make()
        message = str(info.value)
        assert "unknown limit" in message
        for known in LIMITABLE:
            assert known in message


def test_bad_decorator_arguments_are_refused():
    with pytest.raises(ValueError, match="limits must be a mapping"):
        monitored(limits=[("memory", 1)])
