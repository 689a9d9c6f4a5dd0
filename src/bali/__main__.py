"""``python -m bali`` is the ``bali`` command."""

import sys

from bali.cli import main

sys.exit(main())
