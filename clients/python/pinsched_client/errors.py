"""Reading pinsched's errors: the gRPC status plus its `google.rpc` details (AIP-193).

The client raises `grpc.aio.AioRpcError` (a `grpc.RpcError`) unchanged; `error_details(err)`
turns it into an `ErrorDetails` holding the status code, the message and every detail the daemon
attached (`BadRequest` field violations, `ErrorInfo` reason, `PreconditionFailure`). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, cast

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

__all__ = ["DETAILS_KEY", "ErrorDetails", "FieldViolation", "error_details"]

DETAILS_KEY: Final = "grpc-status-details-bin"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad field of a request: its path (`requests[3].pin.title`) and what is wrong."""

    field: str
    description: str


@dataclass(frozen=True, slots=True)
class ErrorDetails:
    """A failed call as data: status, message and the decoded `google.rpc` details."""

    code: grpc.StatusCode
    message: str
    field_violations: tuple[FieldViolation, ...] = ()
    reason: str = ""  # google.rpc.ErrorInfo.reason, a stable machine-readable string
    metadata: tuple[tuple[str, str], ...] = ()  # google.rpc.ErrorInfo.metadata
    precondition_violations: tuple[str, ...] = ()  # "type subject: description"

    @property
    def exit_code(self) -> int:
        """The numeric gRPC status code (INVALID_ARGUMENT → 3, NOT_FOUND → 5, ...)."""
        value: int = self.code.value[0]
        return value

    def lines(self) -> list[str]:
        """Human-readable lines: the status and message first, then one line per violation that
        the message does not already say."""
        out = [f"{self.code.name}: {self.message}" if self.message else self.code.name]
        # A violation the message already states word for word is not repeated.
        out += [
            f"  {v.field}: {v.description}"
            for v in self.field_violations
            if f"{v.field}: {v.description}" not in self.message
        ]
        out += [f"  {p}" for p in self.precondition_violations]
        return out


def error_details(err: grpc.RpcError) -> ErrorDetails:
    """Decode *err*'s status and the `grpc-status-details-bin` trailer it carries, if any."""
    status = _status_from_trailers(err)
    violations: list[FieldViolation] = []
    preconditions: list[str] = []
    reason = ""
    metadata: tuple[tuple[str, str], ...] = ()
    for detail in status.details if status is not None else ():
        bad_request = error_details_pb2.BadRequest()
        info = error_details_pb2.ErrorInfo()
        failure = error_details_pb2.PreconditionFailure()
        if detail.Unpack(bad_request):
            violations += [
                FieldViolation(v.field, v.description) for v in bad_request.field_violations
            ]
        elif detail.Unpack(info):
            reason = info.reason
            metadata = tuple(sorted(info.metadata.items()))
        elif detail.Unpack(failure):
            preconditions += [
                f"{v.type} {v.subject}: {v.description}".strip() for v in failure.violations
            ]
    return ErrorDetails(
        code=err.code(),
        message=err.details() or "",
        field_violations=tuple(violations),
        reason=reason,
        metadata=metadata,
        precondition_violations=tuple(preconditions),
    )


def _status_from_trailers(err: grpc.RpcError) -> status_pb2.Status | None:
    # Sync errors give (key, value) namedtuples, aio errors a Metadata of (key, value) pairs.
    trailers = cast("Iterable[tuple[str, str | bytes]]", err.trailing_metadata() or ())
    for key, value in trailers:
        if key == DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except DecodeError:
                return None
            return status
    return None
