"""`python -m framework` is `run-analysis`."""

import sys

from .cli import main

sys.exit(main())
