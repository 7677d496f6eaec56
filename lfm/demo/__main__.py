"""``python -m lfm.demo``: see :mod:`lfm.demo.cli`."""
import sys

from lfm.demo.cli import main

sys.exit(main())
