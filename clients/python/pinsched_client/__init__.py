"""Typed Python client of the pinsched daemon (gRPC API `pinsched.v1`).

Owns the public surface of the client package: `AsyncClient` (asyncio), `Client` (blocking
facade), request builders (`pin`, `at`, `local_time`, `schedule_request`, ...), error decoding
(`error_details`) and text parsing/formatting (`parse_duration`, `state_name`, ...). The proto
modules are re-exported for convenience::

    from datetime import UTC, datetime, timedelta
    from pinsched_client import AsyncClient, is_terminal, pin, schedule_request, state_name

    async with AsyncClient() as client:  # PINSCHED_TARGET, PINSCHED_API_TOKEN
        job = await client.schedule_pin(schedule_request(
            "acme", pin("123456789", title="Hello", image_url="https://example.com/a.jpg"),
            scheduled_at=datetime.now(UTC) + timedelta(hours=1), window=timedelta(hours=2)))
        async for event in client.watch(job_ids=[job.id], since_sequence=0):
            print(event.sequence, state_name(event.to_state))
            if is_terminal(event.to_state):
                break
"""

from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2

from .builders import at, duration, local_time, pin, schedule_request
from .channel import DEFAULT_TARGET, check_api_token
from .client import AsyncClient
from .errors import ErrorDetails, FieldViolation, error_details
from .sync import Client
from .text import (
    format_duration,
    format_timestamp,
    is_terminal,
    parse_duration,
    parse_instant,
    parse_state,
    parse_states,
    parse_utc_offset,
    parse_wall_time,
    state_name,
)

__all__ = [
    "DEFAULT_TARGET",
    "AsyncClient",
    "Client",
    "ErrorDetails",
    "FieldViolation",
    "account_pb2",
    "at",
    "check_api_token",
    "duration",
    "error_details",
    "format_duration",
    "format_timestamp",
    "is_terminal",
    "job_pb2",
    "local_time",
    "parse_duration",
    "parse_instant",
    "parse_state",
    "parse_states",
    "parse_utc_offset",
    "parse_wall_time",
    "pin",
    "schedule_request",
    "scheduler_pb2",
    "state_name",
]
