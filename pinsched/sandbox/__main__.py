"""``python -m pinsched.sandbox``: run the sandbox stand-alone."""

from pinsched.sandbox.cli import main

raise SystemExit(main())
