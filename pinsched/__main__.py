"""`python -m pinsched` runs the CLI."""

import sys

from pinsched.cli.main import main

sys.exit(main())
