"""`python -m components ...`: the project's offline CLI."""

import sys

from components.cli import main

sys.exit(main())
