"""Moved to the `pinsched.dispatch` package; this name stays for imports from before the move
(the metrics module's type reference)."""

from pinsched.dispatch.dispatcher import AccountDispatcher, Dispatchers, DispatchSettings

__all__ = ["AccountDispatcher", "DispatchSettings", "Dispatchers"]
