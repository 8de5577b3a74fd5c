"""The token keeper: keeps every account's tokens alive whether or not anything is published.

One background task. Each pass it re-persists rotated tokens the store has not taken yet
(`AccountRegistry.persist_pending`), then asks `tokens.next_action` about each account:

* VERIFY — tokens of unknown age (a new account, new credentials): `GET /v5/user_account` with
  the access token (what Pinterest says is stored: username, account type, when), and a refresh
  when client credentials are set, which also learns both lifetimes. A refused access token is
  refreshed when it can be, else the account NEEDS_REAUTH; Pinterest unreachable → tried again
  after `retry_s`;
* REFRESH — less than half of a token's lifetime remains (jittered per account);
* WARN — an unrefreshable token lapses within 7 days: `account.reauth_soon` (webhook) once;
* LAPSED — it has lapsed: NEEDS_REAUTH (`account.needs_reauth`).

Calls to Pinterest are paced by a token bucket (`per_second`), so a thousand accounts due at once
are spread out. While the app's client credentials are refused, only one account is tried per
`retry_s` (a probe); the registry holds every account meanwhile.

`verify_account` is also what CreateAccount/UpdateAccount use, with a short timeout.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import structlog

from pinsched.accounts.registry import AccountRegistry
from pinsched.clock import Activity, Clock, sleep_or_wake
from pinsched.core import tokens
from pinsched.core.accounts import Account
from pinsched.core.pacing import TokenBucket
from pinsched.pinterest import client as pt
from pinsched.pinterest.oauth import Route

log = structlog.get_logger("pinsched.accounts.keeper")

#: The longest the keeper sleeps without looking (new accounts wake it at once).
MAX_IDLE_S: Final = 3600.0
#: How soon a pending (unstored) grant is written again.
PERSIST_RETRY_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class Verified:
    """Pinterest accepted the access token and said who it belongs to."""

    username: str
    account_type: str


@dataclass(frozen=True, slots=True)
class Refused:
    """Pinterest refused the access token (`auth`: 401-like, a refresh may help)."""

    message: str
    auth: bool


@dataclass(frozen=True, slots=True)
class Unreachable:
    """No usable answer (network, timeout, 5xx, 429)."""

    message: str


async def verify_account(
    client: pt.PinterestClient, account: Account, *, timeout_s: float | None = None
) -> Verified | Refused | Unreachable:
    """Ask Pinterest who *account*'s access token belongs to (along the account's route)."""
    client.routes.set(
        account.access_token, Route(account.id, account.api_base, account.ad_account_id)
    )
    outcome = await client.user_account(account.access_token, timeout_s=timeout_s)
    match outcome:
        case pt.Delivered(pin=body):
            return Verified(_text(body, "username"), _text(body, "account_type"))
        case pt.AuthExpired(error=err):
            return Refused(_answer(err), auth=True)
        case pt.Rejected(error=err):
            return Refused(_answer(err), auth=False)
        case _:
            return Unreachable(outcome.error.message)


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    return str(value)[:200] if value else ""


def _answer(err: Any) -> str:
    code = f", code {err.pinterest_code}" if err.pinterest_code else ""
    return f"{err.message} (HTTP {err.http_status}{code})"


class TokenKeeper:
    def __init__(
        self,
        registry: AccountRegistry,
        clock: Clock,
        client: pt.PinterestClient,
        *,
        activity: Activity | None = None,
        per_second: float = 5.0,
        retry_s: float = 300.0,
        verify_timeout_s: float = 10.0,
    ) -> None:
        self.registry, self.clock, self.client = registry, clock, client
        self.activity = activity or Activity()
        self.bucket = TokenBucket(rate=per_second, capacity=max(1.0, per_second))
        self.retry_s = retry_s
        self.verify_timeout_s = verify_timeout_s
        self._not_before: dict[str, float] = {}  # account id → monotonic time of the next try
        self._probe_after = 0.0  # monotonic: next probe of refused client credentials
        self._wake = asyncio.Event()
        self.passes = 0
        #: account id → (the row, refreshable, refused) the plan was made for, and the plan.
        self._plans: dict[str, tuple[tuple[Account, bool, bool], tokens.Plan]] = {}
        #: With several daemons on one database: the accounts this one looks after (the ones
        #: whose lease it holds; `pinsched.cluster`). None: every account.
        self.owns: Callable[[str], bool] | None = None

    def wake(self) -> None:
        """Look again now (an account was created or changed)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        self.activity.enter()
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    delay = await self.run_pass()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("keeper_pass_failed")
                    delay = self.retry_s
                self.activity.leave()
                try:
                    await self._sleep(delay, stop)
                finally:
                    self.activity.enter()
        finally:
            self.activity.leave()

    async def _sleep(self, seconds: float, stop: asyncio.Event) -> None:
        await sleep_or_wake(self.clock, seconds, stop, self._wake)

    async def run_pass(self) -> float:
        """Do what is due now; the seconds until something is due next."""
        self.passes += 1
        reg = self.registry
        soonest = MAX_IDLE_S
        if await reg.persist_pending():
            soonest = PERSIST_RETRY_S
        now, mono = self.clock.now(), self.clock.monotonic()
        accounts = reg.accounts()
        if len(self._plans) > len(accounts):  # forget deleted accounts
            live = {a.id for a in accounts}
            self._plans = {k: v for k, v in self._plans.items() if k in live}
        for i, account in enumerate(accounts):
            if i and not i % 1000:
                await asyncio.sleep(0)  # a long pass never holds the loop
                now, mono = self.clock.now(), self.clock.monotonic()
            if self.owns is not None and not self.owns(account.id):
                continue  # another daemon's account: it refreshes the tokens
            not_before = self._not_before.get(account.id, -math.inf)
            if mono < not_before:
                soonest = min(soonest, not_before - mono)
                continue
            plan = self._plan(account, now)
            if plan.at is None:
                continue
            wait = (plan.at - now).total_seconds()
            if wait > 0:
                soonest = min(soonest, wait)
                continue
            calls = plan.action in (tokens.Action.VERIFY, tokens.Action.REFRESH)
            if calls and reg.app_refused:
                if mono < self._probe_after:
                    soonest = min(soonest, self._probe_after - mono)
                    continue
                self._probe_after = mono + self.retry_s
            if calls and (pace := self.bucket.try_take(mono)):
                return min(soonest, pace)  # the rest waits for the next pass
            await self._act(account, plan.action)
            soonest = 0.0  # look again at once: what comes next for this account
            now, mono = self.clock.now(), self.clock.monotonic()
        return max(0.0, soonest)

    def _plan(self, account: Account, now: datetime) -> tokens.Plan:
        """`tokens.next_action`, remembered while the row and its refresh prospects stay the
        same (rows are immutable: a change is a new object). A remembered plan stays right as
        time passes: its instant is fixed, or "now" when it was made, which is still due."""
        reg = self.registry
        key = (
            account,
            bool(account.refresh_token) and reg.has_client_credentials,
            account.id in reg.refused,
        )
        cached = self._plans.get(account.id)
        if cached is not None and cached[0][0] is account and cached[0][1:] == key[1:]:
            return cached[1]
        plan = tokens.next_action(account, now, can_refresh=key[1], refresh_refused=key[2])
        self._plans[account.id] = (key, plan)
        return plan

    async def _act(self, account: Account, action: tokens.Action) -> None:
        reg = self.registry
        if action is tokens.Action.VERIFY:
            await self._verify(account)
        elif action is tokens.Action.REFRESH:
            result = await reg.refresh(account, reason="keeper", proactive=True)
            if isinstance(result, pt.RefreshFailed):
                self._back_off(account.id)
        elif action is tokens.Action.WARN:
            lapse = tokens.lapses_at(account, refreshable=False)
            log.warning(
                "account_reauth_soon",
                account_id=account.id,
                lapses_at=lapse.isoformat() if lapse else None,
            )
            await reg.record(account.id, reauth_warned_at=self.clock.now())
        elif action is tokens.Action.LAPSED:
            lapse = tokens.lapses_at(account, refreshable=False)
            await reg.mark_needs_reauth(
                account.id,
                (
                    f"the access token lapsed{f' at {lapse.isoformat()}' if lapse else ''} and "
                    "could not be refreshed: authorise the account again (UpdateAccount)"
                ),
            )

    def _back_off(self, account_id: str) -> None:
        self._not_before[account_id] = self.clock.monotonic() + self.retry_s

    async def _verify(self, account: Account) -> None:
        reg = self.registry
        can_refresh = bool(account.refresh_token) and reg.has_client_credentials
        if account.verified_at is None:
            answer = await verify_account(self.client, account, timeout_s=self.verify_timeout_s)
            if isinstance(answer, Unreachable):
                log.warning("account_verify_failed", account_id=account.id, error=answer.message)
                self._back_off(account.id)
                return
            if isinstance(answer, Refused) and answer.auth and can_refresh:
                refreshed = await reg.refresh(account, reason="verify")
                if isinstance(refreshed, pt.RefreshFailed) and not refreshed.permanent:
                    self._back_off(account.id)
                return  # verified with the new token on the next pass (or NEEDS_REAUTH)
            if isinstance(answer, Refused) and answer.auth:
                await reg.mark_needs_reauth(
                    account.id, f"Pinterest refused the access token: {answer.message}"
                )
                return
            changes: dict[str, Any] = {"verified_at": self.clock.now()}
            if isinstance(answer, Verified):
                changes.update(username=answer.username, account_type=answer.account_type)
            else:
                log.warning("account_verify_refused", account_id=account.id, error=answer.message)
            if account.state_reason.startswith(NOT_VERIFIED):
                changes["state_reason"] = account.hold_reason
            updated = await reg.record(account.id, **changes)
            if updated is None:
                return
            account = updated
            log.info("account_verified", account_id=account.id, username=account.username)
        if can_refresh and account.access_ttl_s <= 0 and account.id not in reg.refused:
            result = await reg.refresh(account, reason="verify", proactive=True)
            if isinstance(result, pt.RefreshFailed):
                self._back_off(account.id)
        self._not_before.pop(account.id, None)


#: The start of `state_reason` while an account waits for its first verification.
NOT_VERIFIED: Final = "not verified yet"
