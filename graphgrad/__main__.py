"""``python -m graphgrad`` is the ``graphgrad`` command."""

import sys

from .cli import main

sys.exit(main())
