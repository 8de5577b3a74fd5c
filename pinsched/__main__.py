"""`python -m pinsched` runs the CLI."""

import sys

from pinsched.cli import main

sys.exit(main())
