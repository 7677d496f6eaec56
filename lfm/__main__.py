import sys

from lfm.cli import main

sys.exit(main())
