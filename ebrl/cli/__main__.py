"""``python -m ebrl.cli``: the ``ebrl`` command."""

import sys

from ebrl.cli import main

sys.exit(main())
