"""``python -m baryon``: the same as the ``baryon`` command."""

import sys

from baryon.cli.main import main

sys.exit(main())
