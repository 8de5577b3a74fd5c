"""Accounts at run time: a cache of `Account` rows, their pacers, and OAuth token refresh.

Owns the refresh-token grant (one refresh at a time per account; the rotated refresh token is
stored atomically with the new access token) and the NEEDS_REAUTH transition. It does not touch
jobs: the dispatcher decides what a failed refresh means for them.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog

from pinsched.accounts import Account
from pinsched.clock import Clock
from pinsched.pacing import AccountPacer, TokenBucket
from pinsched.pinterest import PinterestClient, RefreshFailed, TokenGrant
from pinsched.store import Store

log = structlog.get_logger("pinsched.auth")

#: Refresh proactively when the access token expires within this margin.
REFRESH_MARGIN = timedelta(days=1)


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
        return (
            bool(account.refresh_token) and account.access_expires_at is not None
            and account.access_expires_at - self._clock.now() < REFRESH_MARGIN
        )

    async def refresh(self, stale: Account, *, reason: str) -> Account | RefreshFailed:
        """Refresh *stale*'s access token once (unless someone already did since *stale* was
        read). A permanent refusal marks the account NEEDS_REAUTH."""
        async with self._lock(stale.id):
            current = await self._store.get_account(stale.id)
            self.put(current)
            if current.access_token != stale.access_token and current.can_publish:
                return current  # refreshed (or replaced by the user) meanwhile
            if not current.refresh_token or not self._client_id or not self._client_secret:
                from pinsched.jobs import ErrorCategory, JobError

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
                    now = self._clock.now()
                    updated = current.replace(
                        access_token=result.access_token, refresh_token=result.refresh_token,
                        access_expires_at=now + timedelta(seconds=result.expires_in_s),
                        needs_reauth=False, state_reason="", version=current.version + 1,
                        updated_at=now,
                    )
                    await self._store.update_account(current, updated)
                    self.put(updated)
                    log.info("token_refreshed", account_id=current.id, reason=reason)
                    return updated
                failure = result
            if failure.permanent:
                now = self._clock.now()
                marked = current.replace(
                    needs_reauth=True, state_reason=failure.error.message,
                    version=current.version + 1, updated_at=now,
                )
                await self._store.update_account(current, marked)
                self.put(marked)
                log.warning("account_needs_reauth", account_id=current.id,
                            error=failure.error.message)
            return failure
