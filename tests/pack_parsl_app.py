"""The Parsl pack tests' apps: ``total`` imports ``pack_helper`` (a local
module beside it, which imports numpy); ``where`` says which interpreter and
which package ran it, so a test can check that a bare worker ran it packed."""
from parsl import python_app

import pack_helper


@python_app
def total(n, parsl_resource_specification={}):  # noqa: B006 - Parsl's convention
    return pack_helper.total(n)


@python_app
def where():
    import os
    import sys
    return sys.executable, os.environ.get("LFM_PACK_ENV"), "numpy" in sys.modules
