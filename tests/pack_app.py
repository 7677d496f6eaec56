"""The pack tests' app: imports numpy (installed in lfm's environment) and
``pack_helper`` (a local module beside it); ``more`` imports another
distribution by name at run time, which no static scan sees."""
import importlib

import pack_helper


def run(n):
    return pack_helper.total(n)


def more(n, module):
    mod = importlib.import_module(module)
    return pack_helper.total(n), mod.__name__
