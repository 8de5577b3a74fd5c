"""Accounts at run time: a cache of `Account` rows, their pacers, and OAuth token refresh.

Owns the refresh-token grant and the NEEDS_REAUTH transition:

* one refresh at a time per account; a caller holding a token someone already replaced gets the
  current row without a second grant;
* the rotated refresh token is stored with the new access token and its expiry in one
  compare-and-set of the account row (Pinterest's continuous refresh rotates it every time);
* a refused grant (the refresh token is revoked, expired, or the app's credentials are wrong)
  marks the account NEEDS_REAUTH — except for a proactive refresh while the access token still
  works, which only backs off (`PROACTIVE_RETRY_S`) and lets the token be used until it fails;
* `mark_needs_reauth` for a token that is refused even right after a successful refresh.

It does not touch jobs: the dispatcher decides what a failed refresh means for them, and the
scheduler holds the jobs of an account that cannot publish.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Final

import structlog

from pinsched.accounts import Account
from pinsched.clock import Clock
from pinsched.errors import VersionMismatch
from pinsched.jobs import ErrorCategory, JobError
from pinsched.pacing import AccountPacer, TokenBucket
from pinsched.pinterest import PinterestClient, RefreshFailed, TokenGrant
from pinsched.store import Store

log = structlog.get_logger("pinsched.auth")

#: Refresh proactively when the access token expires within this margin.
REFRESH_MARGIN: Final = timedelta(days=1)
#: After a failed proactive refresh, wait this long (monotonic seconds) before trying again.
PROACTIVE_RETRY_S: Final = 600.0
_CAS_TRIES: Final = 5


class AccountRegistry:
    def __init__(
        self, store: Store, clock: Clock, client: PinterestClient, *,
        client_id: str | None, client_secret: str | None, app_writes_per_minute: int = 0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._client = client
        self._client_id = client_id
        self._client_secret = client_secret
        self._cache: dict[str, Account] = {}
        self._pacers: dict[str, AccountPacer] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._proactive_after: dict[str, float] = {}
        self.app_bucket = (
            TokenBucket.per_minute(app_writes_per_minute) if app_writes_per_minute > 0
            else TokenBucket(rate=0.0, capacity=0.0)
        )
        self.refreshes = 0

    async def load_all(self) -> None:
        after = ""
        while batch := await self._store.list_accounts(after_id=after, limit=1000):
            for account in batch:
                self.put(account)
            after = batch[-1].id

    def put(self, account: Account) -> None:
        """Record the current row of *account* (after any write)."""
        self._cache[account.id] = account
        pacer = self._pacers.get(account.id)
        if pacer is None:
            self._pacers[account.id] = AccountPacer(account.pacing)
        elif pacer.policy != account.pacing:
            pacer.set_policy(account.pacing)

    def forget(self, account_id: str) -> None:
        self._cache.pop(account_id, None)
        self._pacers.pop(account_id, None)
        self._proactive_after.pop(account_id, None)

    def cached(self, account_id: str) -> Account | None:
        return self._cache.get(account_id)

    def can_publish(self, account_id: str) -> bool:
        account = self._cache.get(account_id)
        return account is not None and account.can_publish

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

    def needs_refresh(self, account: Account) -> bool:
        """Whether to refresh *account*'s token before using it (it expires within the margin,
        and no proactive refresh failed recently)."""
        if not account.refresh_token or account.access_expires_at is None:
            return False
        if self._clock.monotonic() < self._proactive_after.get(account.id, float("-inf")):
            return False
        return account.access_expires_at - self._clock.now() < REFRESH_MARGIN

    async def refresh(self, stale: Account, *, reason: str,
                      proactive: bool = False) -> Account | RefreshFailed:
        """Refresh *stale*'s access token once (unless someone already did since *stale* was
        read). A permanent refusal marks the account NEEDS_REAUTH, unless *proactive* and the
        access token has not expired yet."""
        async with self._lock(stale.id):
            current = await self._store.get_account(stale.id)
            self.put(current)
            if current.access_token != stale.access_token and current.can_publish:
                return current  # refreshed (or replaced by the user) meanwhile
            if not current.refresh_token or not self._client_id or not self._client_secret:
                missing = "refresh token" if not current.refresh_token else "OAuth client id/secret"
                failure = RefreshFailed(JobError(
                    category=ErrorCategory.AUTH,
                    message=f"access token refused ({reason}) and no {missing} to refresh it",
                ), permanent=True)
            else:
                result = await self._client.refresh_token(
                    self._client_id, self._client_secret, current.refresh_token
                )
                self.refreshes += 1
                if isinstance(result, TokenGrant):
                    return await self._store_grant(current, result, reason)
                failure = result
            still_valid = (current.access_expires_at is not None
                           and current.access_expires_at > self._clock.now())
            if proactive and still_valid:
                self._proactive_after[current.id] = self._clock.monotonic() + PROACTIVE_RETRY_S
                log.warning("proactive_refresh_failed", account_id=current.id,
                            error=failure.error.message, permanent=failure.permanent)
                return failure
            if failure.permanent:
                await self._mark(current, failure.error.message)
            return failure

    async def mark_needs_reauth(self, account_id: str, reason: str) -> Account:
        """Mark the account NEEDS_REAUTH (its jobs are then held until new credentials come)."""
        async with self._lock(account_id):
            current = await self._store.get_account(account_id)
            return await self._mark(current, reason)

    async def _store_grant(self, current: Account, grant: TokenGrant, reason: str) -> Account:
        """Store the new access token, its expiry and the rotated refresh token atomically."""
        for _ in range(_CAS_TRIES):
            now = self._clock.now()
            updated = current.replace(
                access_token=grant.access_token, refresh_token=grant.refresh_token,
                access_expires_at=now + timedelta(seconds=grant.expires_in_s),
                needs_reauth=False, state_reason="", version=current.version + 1,
                updated_at=now,
            )
            try:
                await self._store.update_account(current, updated)
            except VersionMismatch:
                # Someone else changed the row (pacing, pause, …) while the grant was in
                # flight: the grant still holds (the old refresh token is spent), so re-apply it
                # on top — unless the user supplied new tokens meanwhile, which win.
                fresh = await self._store.get_account(current.id)
                if fresh.access_token != current.access_token:
                    self.put(fresh)
                    return fresh
                current = fresh
                continue
            self.put(updated)
            self._proactive_after.pop(current.id, None)
            log.info("token_refreshed", account_id=current.id, reason=reason,
                     expires_in_s=grant.expires_in_s)
            return updated
        raise RuntimeError(f"account {current.id}: could not store a refreshed token")

    async def _mark(self, current: Account, reason: str) -> Account:
        for _ in range(_CAS_TRIES):
            if current.needs_reauth:
                self.put(current)
                return current
            now = self._clock.now()
            marked = current.replace(needs_reauth=True, state_reason=reason,
                                     version=current.version + 1, updated_at=now)
            try:
                await self._store.update_account(current, marked)
            except VersionMismatch:
                fresh = await self._store.get_account(current.id)
                if fresh.access_token != current.access_token:
                    self.put(fresh)  # the user supplied new tokens meanwhile: they win
                    return fresh
                current = fresh
                continue
            self.put(marked)
            log.warning("account_needs_reauth", account_id=current.id, error=reason)
            return marked
        raise RuntimeError(f"account {current.id}: could not mark it NEEDS_REAUTH")
