"""pinsched: schedules Pinterest pins reliably."""

__version__ = "0.1.0"
