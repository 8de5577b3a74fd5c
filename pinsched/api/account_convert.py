"""Accounts on the wire: the account itself (never a token), its state, pacing (to proto, its
checks, from proto) and posting schedule. Pure: no I/O, no clock reads. Timestamps and
durations are `api.convert`'s; the other account request rules are `api.account_validation`."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from pinsched.api.convert import (
    duration_from_proto,
    duration_problem,
    duration_to_proto,
    timestamp_to_proto,
)
from pinsched.api.fields import join_path
from pinsched.core.accounts import Account, AccountState, Pacing
from pinsched.core.errors import FieldViolation, InvalidArgument
from pinsched.core.slots import PostingSchedule
from pinsched.v1 import account_pb2

MIN_SPACING_MAX: Final = timedelta(days=1)
WRITES_PER_MINUTE_MAX: Final = 100_000


def account_state_to_proto(state: AccountState) -> account_pb2.Account.State.ValueType:
    return account_pb2.Account.State.Value(f"STATE_{state.value}")


def posting_schedule_to_proto(schedule: PostingSchedule) -> account_pb2.PostingSchedule:
    """An account's posting schedule on the wire."""
    msg = account_pb2.PostingSchedule(max_per_slot=schedule.max_per_slot)
    msg.time_zone.id = schedule.time_zone
    for rule in schedule.rules:
        item = msg.slots.add(days=sorted(rule.days))
        item.time.hours, item.time.minutes = rule.time.hour, rule.time.minute
        item.time.seconds = rule.time.second
    return msg


def pacing_to_proto(pacing: Pacing) -> account_pb2.Pacing:
    return account_pb2.Pacing(
        min_spacing=duration_to_proto(pacing.min_spacing),
        max_per_hour=pacing.max_per_hour,
        max_per_day=pacing.max_per_day,
        writes_per_minute=pacing.writes_per_minute,
    )


def pacing_violations(pacing: account_pb2.Pacing, field_prefix: str) -> list[FieldViolation]:
    """Every problem of a `Pacing` message at *field_prefix* (for example `account.pacing`)."""
    out: list[FieldViolation] = []
    spacing_path = join_path(field_prefix, "min_spacing")
    problem = duration_problem(pacing.min_spacing)
    if problem is not None:
        out.append(FieldViolation(spacing_path, problem))
    else:
        spacing = duration_from_proto(pacing.min_spacing, field=spacing_path)
        if not timedelta(0) <= spacing <= MIN_SPACING_MAX:
            out.append(FieldViolation(spacing_path, f"must be 0s to 1 day, got {spacing}"))
    for name, value in (
        ("max_per_hour", pacing.max_per_hour),
        ("max_per_day", pacing.max_per_day),
        ("writes_per_minute", pacing.writes_per_minute),
    ):
        if value < 0:
            out.append(
                FieldViolation(
                    join_path(field_prefix, name), f"must be 0 (no cap) or more, got {value}"
                )
            )
    if pacing.writes_per_minute > WRITES_PER_MINUTE_MAX:
        out.append(
            FieldViolation(
                join_path(field_prefix, "writes_per_minute"),
                f"at most {WRITES_PER_MINUTE_MAX}, got {pacing.writes_per_minute}",
            )
        )
    return out


def build_pacing(pacing: account_pb2.Pacing) -> Pacing:
    """The `Pacing` of a message `pacing_violations` found nothing wrong with."""
    return Pacing(
        min_spacing=duration_from_proto(pacing.min_spacing, field="pacing.min_spacing"),
        max_per_hour=pacing.max_per_hour,
        max_per_day=pacing.max_per_day,
        writes_per_minute=pacing.writes_per_minute,
    )


def pacing_from_proto(pacing: account_pb2.Pacing, field_prefix: str) -> Pacing:
    """The `Pacing` of *pacing*; `InvalidArgument` naming every bad field under *field_prefix*."""
    violations = pacing_violations(pacing, field_prefix)
    if violations:
        raise InvalidArgument(violations)
    return build_pacing(pacing)


def account_to_proto(account: Account) -> account_pb2.Account:
    """*account* on the wire: never a token (only `has_refresh_token` and the expiries)."""
    out = account_pb2.Account(
        id=account.id,
        display_name=account.display_name,
        pacing=pacing_to_proto(account.pacing),
        state=account_state_to_proto(account.state),
        paused=account.paused,
        has_refresh_token=bool(account.refresh_token),
        state_reason=account.state_reason,
        create_time=timestamp_to_proto(account.created_at),
        update_time=timestamp_to_proto(account.updated_at),
        ad_account_id=account.ad_account_id,
        api_base=account.api_base,
        username=account.username,
        account_type=account.account_type,
    )
    if account.access_expires_at is not None:
        out.access_token_expiry.CopyFrom(timestamp_to_proto(account.access_expires_at))
    if account.refresh_expires_at is not None:
        out.refresh_token_expiry.CopyFrom(timestamp_to_proto(account.refresh_expires_at))
    if account.verified_at is not None:
        out.last_verified_time.CopyFrom(timestamp_to_proto(account.verified_at))
    if account.posting_schedule is not None:
        out.posting_schedule.CopyFrom(posting_schedule_to_proto(account.posting_schedule))
    return out
