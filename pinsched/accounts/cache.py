"""Accounts at run time: a cache of `Account` rows, their pacers and routes, holds.

The base of `pinsched.accounts.registry.AccountRegistry` (which adds OAuth token refresh): the
current row of each account (with a pending, not yet stored grant's tokens applied), the
per-account route (API base, `ad_account_id`) of each access token, pacer state that survives a
restart (`save_pacer`, restored by `load_all`), and holds: `hold` puts an account on hold when
Pinterest refuses the whole account (code 29…).

It does not touch jobs: the dispatcher decides what a failed refresh means for them, and the
scheduler holds the jobs of an account that cannot publish.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Final

import structlog

from pinsched.clock import Clock
from pinsched.core.accounts import Account
from pinsched.core.errors import AccountNotFound, VersionMismatch
from pinsched.core.pacing import AccountPacer, TokenBucket
from pinsched.pinterest.client import PinterestClient
from pinsched.pinterest.oauth import Route
from pinsched.store import Store
from pinsched.store.changes import KeepsChanging, retrying

log = structlog.get_logger("pinsched.accounts")


class AccountCache:
    """The cached rows, pacers and routes of every account (see `AccountRegistry`)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        client: PinterestClient,
        *,
        client_id: str | None,
        client_secret: str | None,
        app_writes_per_minute: int = 0,
        on_change: Callable[[Account], None] = lambda account: None,
        on_app_refused: Callable[[str], None] = lambda reason: None,
    ) -> None:
        """*on_change* is told every account change; *on_app_refused* when Pinterest refuses
        the app's client credentials (with why) or takes them again ("")."""
        self._store = store
        self._clock = clock
        self._client = client
        self._client_id = client_id
        self._client_secret = client_secret
        self._cache: dict[str, Account] = {}
        self._pacers: dict[str, AccountPacer] = {}
        self._saved: dict[str, tuple[object, ...]] = {}  # what each pacer was when last stored
        self._locks: dict[str, asyncio.Lock] = {}
        self._proactive_after: dict[str, float] = {}
        self.app_bucket = (
            TokenBucket.per_minute(app_writes_per_minute)
            if app_writes_per_minute > 0
            else TokenBucket(rate=0.0, capacity=0.0)
        )
        self.refreshes = 0
        self._pending: dict[str, Account] = {}  # account id → row the store has not taken yet
        #: Digests of refresh tokens Pinterest answered for whose successor is not stored yet.
        self._spent: dict[str, set[bytes]] = {}
        self.refused: set[str] = set()  # accounts whose last refresh was refused for good
        #: Why Pinterest refuses the app's client credentials ("" = it does not).
        self.app_refused = ""
        self.on_app_refused = on_app_refused
        self.on_change = on_change
        client.on_quota = self._on_quota

    def _on_quota(self, account_id: str, remaining: float, reset_s: float) -> None:
        pacer = self._pacers.get(account_id)
        if pacer is not None:
            pacer.quota_hint(self._clock.monotonic(), remaining, reset_s)

    async def load_all(self) -> None:
        after = ""
        while batch := await self._store.list_accounts(after_id=after, limit=1000):
            for account in batch:
                self.put(account)
            after = batch[-1].id
        now, mono = self._clock.now(), self._clock.monotonic()
        for account_id, snapshot in (await self._store.pacer_states()).items():
            if (pacer := self._pacers.get(account_id)) is not None:
                pacer.restore(snapshot, mono=mono, wall=now.timestamp())

    async def save_pacer(self, account_id: str, *, only_if_changed: bool = False) -> None:
        """Store the account's pacer (after a 429 or a spam block: a restart must not burst;
        and when its lease moves to another daemon). *only_if_changed*: not when its pins and
        slow-downs are as last saved."""
        pacer = self._pacers.get(account_id)
        if pacer is not None:
            now = self._clock.now()
            key = (pacer.last_pin, len(pacer.recent), pacer.slowdown, pacer.blocked_until)
            if only_if_changed and self._saved.get(account_id) == key:
                return
            await self._store.save_pacer(
                account_id, pacer.snapshot(mono=self._clock.monotonic(), wall=now.timestamp()), now
            )
            self._saved[account_id] = key

    async def restore_pacer(self, account_id: str) -> None:
        """Take the account's stored pacer state (its lease arrived from another daemon)."""
        state = (await self._store.pacer_states([account_id])).get(account_id)
        pacer = self._pacers.get(account_id)
        if state is not None and pacer is not None:
            now = self._clock.now()
            pacer.restore(state, mono=self._clock.monotonic(), wall=now.timestamp())

    def put(self, account: Account) -> None:
        """Record the current row of *account* (after any write). A row still carrying a
        refresh token that a pending (unstored) grant replaced gets the grant's tokens."""
        pending = self._pending.get(account.id)
        if pending is not None:
            if self._is_spent(account):
                account = account.replace(**token_fields(pending))
            else:  # stored at last, or the user gave new credentials: they win
                del self._pending[account.id]
                self._spent.pop(account.id, None)
        old = self._cache.get(account.id)
        if old is not None and old.access_token != account.access_token:
            self._client.routes.set(old.access_token, None)
        if account.access_token:
            self._client.routes.set(
                account.access_token, Route(account.id, account.api_base, account.ad_account_id)
            )
        self._cache[account.id] = account
        pacer = self._pacers.get(account.id)
        if pacer is None:
            self._pacers[account.id] = AccountPacer(account.pacing)
        elif pacer.policy != account.pacing:
            pacer.set_policy(account.pacing)
        if old is not None and old.refresh_token != account.refresh_token:
            self.refused.discard(account.id)  # new credentials: worth trying again
        self.on_change(account)

    def forget(self, account_id: str) -> None:
        old = self._cache.pop(account_id, None)
        if old is not None:
            self._client.routes.set(old.access_token, None)
        self._pacers.pop(account_id, None)
        self._proactive_after.pop(account_id, None)
        self._pending.pop(account_id, None)
        self.refused.discard(account_id)

    def _is_spent(self, account: Account) -> bool:
        return digest(account.refresh_token) in self._spent.get(account.id, ())

    def accounts(self) -> list[Account]:
        """Every known account (cached rows)."""
        return list(self._cache.values())

    @property
    def has_client_credentials(self) -> bool:
        return bool(self._client_id and self._client_secret)

    @property
    def pending(self) -> frozenset[str]:
        """Accounts whose newest tokens the store has not taken yet."""
        return frozenset(self._pending)

    def cached(self, account_id: str) -> Account | None:
        return self._cache.get(account_id)

    def can_publish(self, account_id: str) -> bool:
        account = self._cache.get(account_id)
        return account is not None and account.can_publish and not self.app_refused

    async def get(self, account_id: str) -> Account:
        account = self._cache.get(account_id)
        if account is None:
            account = await self._store.get_account(account_id)
            self.put(account)
        return account

    def pacer(self, account_id: str) -> AccountPacer:
        return self._pacers[account_id]

    def _lock(self, account_id: str) -> asyncio.Lock:
        return self._locks.setdefault(account_id, asyncio.Lock())

    async def hold(self, account_id: str, reason: str) -> Account:
        """Put the account on hold: Pinterest refuses it as a whole (its jobs wait, unfailed,
        until UpdateAccount changes its credentials, API base or ad account)."""
        async with self._lock(account_id):

            async def attempt() -> Account:
                current = await self._store.get_account(account_id)
                if current.hold_reason:
                    self.put(current)
                    return current
                held = current.replace(
                    hold_reason=reason,
                    state_reason=reason,
                    version=current.version + 1,
                    updated_at=self._clock.now(),
                )
                await self._store.update_account(current, held)  # VersionMismatch: again
                self.put(held)
                log.warning("account_held", account_id=account_id, reason=reason)
                return held

            return await retrying(attempt, f"account {account_id!r}", conflict=VersionMismatch)

    async def record(self, account_id: str, **changes: object) -> Account | None:
        """Apply *changes* (what Pinterest said, a warning sent) to the stored row; None when
        the account is gone."""
        async with self._lock(account_id):

            async def attempt() -> Account | None:
                try:
                    current = await self._store.get_account(account_id)
                except AccountNotFound:  # deleted meanwhile
                    return None
                new = current.replace(
                    **changes, version=current.version + 1, updated_at=self._clock.now()
                )
                await self._store.update_account(current, new)  # VersionMismatch: again
                self.put(new)
                return self._cache[account_id]

            try:
                return await retrying(attempt, f"account {account_id!r}", conflict=VersionMismatch)
            except KeepsChanging:
                return None


_TOKEN_FIELDS: Final = (
    "access_token",
    "refresh_token",
    "access_expires_at",
    "access_ttl_s",
    "refresh_expires_at",
    "refresh_ttl_s",
    "reauth_warned_at",
    "scopes",
)


def token_fields(account: Account) -> dict[str, object]:
    return {name: getattr(account, name) for name in _TOKEN_FIELDS}


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
