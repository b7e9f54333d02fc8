"""`python -m framework` is `run-analysis`."""

import sys

from framework.app.cli import main

sys.exit(main())
