"""The AccountService servicer: convert, validate the account's fields, call `AccountAdmin`,
convert back."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import empty_pb2

from pinsched.accounts.admin import AccountAdmin
from pinsched.api import account_convert as cv
from pinsched.api import slots as api_slots
from pinsched.api import validation as va
from pinsched.api.account_rules import account_text_violations
from pinsched.api.account_validation import routing_violations
from pinsched.api.pagination import page_size, page_token, read_page_token
from pinsched.api.status import unary
from pinsched.clock import Clock
from pinsched.core import errors
from pinsched.core.account_changes import ASSUMED_ACCESS_LIFETIME, AccountUpdate
from pinsched.core.accounts import Account, Pacing
from pinsched.v1 import (
    account_pb2,
    account_pb2_grpc,
)

Ctx = grpc.aio.ServicerContext[Any, Any]
ACCOUNT_PATHS = frozenset(
    {
        "display_name",
        "access_token",
        "refresh_token",
        "access_token_expire_time",
        "pacing",
        "pacing.min_spacing",
        "pacing.max_per_hour",
        "pacing.max_per_day",
        "pacing.writes_per_minute",
        "paused",
        "ad_account_id",
        "api_base",
        "posting_schedule",
    }
)


class AccountServicer(account_pb2_grpc.AccountServiceServicer):
    def __init__(self, admin: AccountAdmin, clock: Clock) -> None:
        self.admin, self.clock = admin, clock

    @unary
    async def CreateAccount(
        self, request: account_pb2.CreateAccountRequest, context: Ctx
    ) -> account_pb2.Account:
        violations = []
        v = va.account_id_violation(request.account_id, "account_id")
        if v:
            violations.append(v)
        a = request.account
        if not a.access_token:
            violations.append(errors.FieldViolation("account.access_token", "required"))
        violations.extend(
            account_text_violations(a, ("display_name", "access_token", "refresh_token"), "account")
        )
        if a.HasField("pacing"):
            violations.extend(va.pacing_violations(a.pacing, "account.pacing"))
        violations.extend(routing_violations(a))
        try:
            schedule = api_slots.posting_schedule_from_proto(
                a.posting_schedule, "account.posting_schedule"
            )
        except errors.InvalidArgument as exc:
            violations.extend(exc.violations)
        if violations:
            raise errors.InvalidArgument(violations)
        now = self.clock.now()
        account = Account(
            id=request.account_id,
            display_name=a.display_name,
            access_token=a.access_token,
            refresh_token=a.refresh_token,
            access_expires_at=(
                va.timestamp_from_proto(
                    a.access_token_expire_time, field="account.access_token_expire_time"
                )
                if a.HasField("access_token_expire_time")
                else now + ASSUMED_ACCESS_LIFETIME
            ),
            pacing=va.build_pacing(a.pacing) if a.HasField("pacing") else Pacing(),
            paused=a.paused,
            created_at=now,
            updated_at=now,
            posting_schedule=schedule,
            ad_account_id=a.ad_account_id,
            api_base=a.api_base,
        )
        return cv.account_to_proto(await self.admin.create(account))

    @unary
    async def GetAccount(
        self, request: account_pb2.GetAccountRequest, context: Ctx
    ) -> account_pb2.Account:
        if not request.account_id:
            raise errors.InvalidArgument.one("account_id", "required")
        return cv.account_to_proto(await self.admin.get(request.account_id))

    @unary
    async def ListAccounts(
        self, request: account_pb2.ListAccountsRequest, context: Ctx
    ) -> account_pb2.ListAccountsResponse:
        size = page_size(request.page_size)
        after = read_page_token(request.page_token, "accounts", "")
        accounts = await self.admin.list(after_id=after, limit=size + 1)
        more = len(accounts) > size
        accounts = accounts[:size]
        return account_pb2.ListAccountsResponse(
            accounts=[cv.account_to_proto(a) for a in accounts],
            next_page_token=page_token("accounts", accounts[-1].id, "") if more else "",
        )

    @unary
    async def UpdateAccount(
        self, request: account_pb2.UpdateAccountRequest, context: Ctx
    ) -> account_pb2.Account:
        a = request.account
        if not a.id:
            raise errors.InvalidArgument.one("account.id", "required")
        paths = list(request.update_mask.paths)
        if not paths:
            raise errors.InvalidArgument.one("update_mask", "name at least one field to change")
        bad = [p for p in paths if p not in ACCOUNT_PATHS]
        if bad:
            raise errors.InvalidArgument(
                [
                    errors.FieldViolation(
                        "update_mask",
                        f"{p!r} cannot be updated; allowed: {', '.join(sorted(ACCOUNT_PATHS))}",
                    )
                    for p in bad
                ]
            )
        if any(p.startswith("pacing") for p in paths):
            vs = va.pacing_violations(a.pacing, "account.pacing")
            if vs:
                raise errors.InvalidArgument(vs)
        if "access_token" in paths and not a.access_token:
            raise errors.InvalidArgument.one("account.access_token", "must not be empty")
        if text := account_text_violations(a, paths, "account"):
            raise errors.InvalidArgument(text)
        if vs := routing_violations(a, paths=frozenset(paths)):
            raise errors.InvalidArgument(vs)
        values: dict[str, Any] = {}
        for p in paths:
            if p == "pacing" or p.startswith("pacing."):
                values["pacing"] = va.build_pacing(a.pacing)
            elif p == "posting_schedule":
                values[p] = api_slots.posting_schedule_from_proto(
                    a.posting_schedule, "account.posting_schedule"
                )
            elif p == "access_token_expire_time":
                values["access_expires_at"] = (
                    va.timestamp_from_proto(
                        a.access_token_expire_time, field="account.access_token_expire_time"
                    )
                    if a.HasField("access_token_expire_time")
                    else None
                )
            else:
                values[p] = getattr(a, p)
        update = AccountUpdate(paths=paths, values=values)
        return cv.account_to_proto(await self.admin.update_fields(a.id, update))

    @unary
    async def DeleteAccount(
        self, request: account_pb2.DeleteAccountRequest, context: Ctx
    ) -> empty_pb2.Empty:
        if not request.account_id:
            raise errors.InvalidArgument.one("account_id", "required")
        await self.admin.delete(request.account_id, force=request.force)
        return empty_pb2.Empty()
