"""Calls the Work Queue tests run on workers. A module of their own, importing
nothing heavy: each task's runner (and its fork server) imports the module a
function lives in, so this keeps a task's start-up short."""
import time

MB = 2 ** 20


def hold(mb, seconds=0.0):
    """Touch ``mb`` MB and keep it ``seconds``; return ``mb``."""
    block = b"\1" * int(mb * MB)
    time.sleep(seconds)
    del block
    return mb


def boom():
    raise KeyError("no such thing")
