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


def site_view():
    """What a call sees of site's set-up: (no_site flag, prefix, exec_prefix,
    site's builtins present)."""
    import builtins
    import sys
    return (sys.flags.no_site, sys.prefix, sys.exec_prefix,
            all(callable(getattr(builtins, n, None)) for n in ("exit", "quit", "help", "license")))
