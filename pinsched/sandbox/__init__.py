"""pinsched.sandbox: a local, in-memory Pinterest API v5 stand-in for tests, benchmarks, demos.

Modules: server (`Sandbox`: HTTP lifecycle, middleware), api (v5 handlers), admin (/_admin/),
state (the in-memory world), validation (request bodies), render (JSON shapes), faults (fault
rules), ratelimit (org_write window), errors (Pinterest error catalogue), cli (flags, `run`).

Rule: it stands in for Pinterest, built from Pinterest's OpenAPI description, and imports nothing
from pinsched outside `pinsched.sandbox`, so it cannot share a mistake with the client it tests.
"""

from pinsched.sandbox.errors import ApiError
from pinsched.sandbox.faults import FaultDecision, FaultKind, FaultRule
from pinsched.sandbox.server import RequestRecord, Sandbox
from pinsched.sandbox.state import SandboxState

__all__ = [
    "ApiError",
    "FaultDecision",
    "FaultKind",
    "FaultRule",
    "RequestRecord",
    "Sandbox",
    "SandboxState",
]
