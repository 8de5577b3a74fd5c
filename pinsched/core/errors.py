"""One exception tree for pinsched. Each error carries a stable `reason` (the gRPC
`google.rpc.ErrorInfo.reason`); `pinsched.api.status` maps the classes to status codes.

    PinschedError
    ├── InvalidArgument        bad input; carries every field violation   → INVALID_ARGUMENT
    ├── NotFound                                                          → NOT_FOUND
    │   ├── JobNotFound
    │   └── AccountNotFound
    ├── AlreadyExists          request_id reused with other content; id taken → ALREADY_EXISTS
    ├── FailedPrecondition     the state does not allow it                 → FAILED_PRECONDITION
    │   └── IllegalTransition  the transition table forbids a move
    ├── VersionMismatch        expected_version is stale                   → ABORTED
    ├── Unimplemented          not built yet                               → UNIMPLEMENTED
    ├── ResourceExhausted      a server-wide cap is reached; retry later   → RESOURCE_EXHAUSTED
    ├── ShuttingDown                                                       → UNAVAILABLE
    ├── StorageUnavailable     disk full, read-only, I/O error; nothing written → UNAVAILABLE
    └── RemoteUnavailable      a check with Pinterest could not be made      → UNAVAILABLE

Pinterest's errors never cross the API as exceptions: they become job state and `last_error`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class PinschedError(Exception):
    """Base of every error pinsched raises on purpose."""

    reason = "PINSCHED_ERROR"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field: its path (`requests[3].pin.title`) and what is wrong with it."""

    field: str
    description: str


class InvalidArgument(PinschedError):
    reason = "INVALID_ARGUMENT"

    #: Violations spelled out in the message (the status details list more, see `reported`).
    MESSAGE_VIOLATIONS = 5

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        self.violations = tuple(violations)
        shown = self.violations[: self.MESSAGE_VIOLATIONS]
        message = "; ".join(f"{v.field}: {v.description}" for v in shown)
        if len(self.violations) > len(shown):
            message += f"; and {len(self.violations) - len(shown)} more (see the details)"
        super().__init__(message)

    def reported(self, limit: int) -> tuple[FieldViolation, ...]:
        """The first *limit* violations, plus one entry saying how many more there are: what
        fits in a response's trailing metadata however many fields are wrong."""
        if len(self.violations) <= limit:
            return self.violations
        more = len(self.violations) - limit
        return (
            *self.violations[:limit],
            FieldViolation(
                self.violations[limit].field,
                f"and {more} more violations from here on, not listed (fix these, send it again)",
            ),
        )

    @classmethod
    def one(cls, field: str, description: str) -> InvalidArgument:
        return cls([FieldViolation(field, description)])


class NotFound(PinschedError):
    reason = "NOT_FOUND"


class JobNotFound(NotFound):
    reason = "JOB_NOT_FOUND"

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id!r} does not exist")


class AccountNotFound(NotFound):
    reason = "ACCOUNT_NOT_FOUND"

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        super().__init__(f"account {account_id!r} does not exist; create it with CreateAccount")


class AlreadyExists(PinschedError):
    reason = "ALREADY_EXISTS"


class FailedPrecondition(PinschedError):
    reason = "FAILED_PRECONDITION"


class IllegalTransition(FailedPrecondition):
    reason = "ILLEGAL_TRANSITION"

    def __init__(self, job_id: str, src: str, dst: str) -> None:
        self.job_id, self.src, self.dst = job_id, src, dst
        super().__init__(f"job {job_id!r} is {src}; it cannot become {dst}")


class VersionMismatch(PinschedError):
    reason = "VERSION_MISMATCH"

    def __init__(self, job_id: str, expected: int, current: int) -> None:
        self.expected, self.current = expected, current
        super().__init__(
            f"{job_id!r} is at version {current}, not {expected}; read it again and retry"
        )


class Unimplemented(PinschedError):
    reason = "UNIMPLEMENTED"


class ResourceExhausted(PinschedError):
    reason = "RESOURCE_EXHAUSTED"


class ShuttingDown(PinschedError):
    reason = "SHUTTING_DOWN"

    def __init__(self) -> None:
        super().__init__("pinsched is shutting down; retry against the restarted daemon")


class StorageUnavailable(PinschedError):
    """The database could not be written or read (disk full, read-only, I/O error). The change
    was not written; retry once the storage is fixed."""

    reason = "STORAGE_UNAVAILABLE"


class RemoteUnavailable(PinschedError):
    """A check with Pinterest (or a media host) could not be made; nothing was done."""

    reason = "REMOTE_UNAVAILABLE"
