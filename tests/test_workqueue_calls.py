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


def exit_with(code):
    import sys
    sys.exit(code)


def interrupt():
    raise KeyboardInterrupt("pressed in the call")


def generator_exit():
    raise GeneratorExit()


def where():
    """The call's working directory."""
    import os
    return os.getcwd()


def getenv(name):
    import os
    return os.environ.get(name)


def touch(path, seconds=0.0):
    """Create ``path`` (after ``seconds``): proof that the call ran."""
    time.sleep(seconds)
    with open(path, "w") as f:
        f.write("ran")
    return path


def write_mb(mb):
    """Write ``mb`` MB into the working directory (kept until the call ends)."""
    with open("blob", "wb") as f:
        f.write(b"\0" * int(mb * MB))
        f.flush()
    time.sleep(0.5)
    return mb


def payload(mb):
    """A result of ``mb`` MB (what a call sends back)."""
    return b"\0" * int(mb * MB)
