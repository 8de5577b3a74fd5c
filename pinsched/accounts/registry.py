"""Accounts at run time: the cache (`pinsched.accounts.cache`) plus OAuth token refresh.

Owns the refresh-token grant and the NEEDS_REAUTH transition:

* one refresh at a time per account; a caller holding a token someone already replaced gets the
  current row without a second grant;
* the rotated refresh token is stored with the new access token and its expiry in one
  compare-and-set of the account row (Pinterest's continuous refresh rotates it every time);
* a refused grant (the refresh token is revoked, expired, or the app's credentials are wrong)
  marks the account NEEDS_REAUTH — except for a proactive refresh while the access token still
  works, which only backs off (`PROACTIVE_RETRY_S`) and lets the token be used until it fails;
* `mark_needs_reauth` for a token that is refused even right after a successful refresh;
* a rotated refresh token is never lost: when the store refuses the new pair (disk full, I/O
  error), it is kept in memory (`pending`), used for every call, and re-persisted
  (`persist_pending`, by the keeper) until the store takes it; a refresh token Pinterest has
  already answered for is never sent again;
* holds: `hold` puts an account on hold when Pinterest refuses the whole account (code 29…);
  a refusal of the app's own client credentials at the token endpoint holds every account
  (`app_refused`) without marking any of them NEEDS_REAUTH;
* the per-account route (API base, `ad_account_id`) of each access token, and pacer state that
  survives a restart (`save_pacer`, restored by `load_all`).

It does not touch jobs: the dispatcher decides what a failed refresh means for them, and the
scheduler holds the jobs of an account that cannot publish.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

import structlog

from pinsched.accounts.cache import AccountCache, digest, token_fields
from pinsched.core.accounts import Account
from pinsched.core.errors import VersionMismatch
from pinsched.core.jobs import ErrorCategory, JobError
from pinsched.pinterest.client import RefreshFailed, TokenGrant
from pinsched.store.changes import Lost, retrying

log = structlog.get_logger("pinsched.accounts")

#: Refresh proactively when the access token expires within this margin.
REFRESH_MARGIN: Final = timedelta(days=1)
#: After a failed proactive refresh, wait this long (monotonic seconds) before trying again.
PROACTIVE_RETRY_S: Final = 600.0


class AccountRegistry(AccountCache):
    """Every account at run time: the cache of `AccountCache` and the refresh-token grant."""

    def needs_refresh(self, account: Account) -> bool:
        """Whether to refresh *account*'s token before using it (it expires within the margin,
        and no proactive refresh failed recently)."""
        if not account.refresh_token or account.access_expires_at is None:
            return False
        if self._clock.monotonic() < self._proactive_after.get(account.id, float("-inf")):
            return False
        return account.access_expires_at - self._clock.now() < REFRESH_MARGIN

    async def refresh(
        self, stale: Account, *, reason: str, proactive: bool = False
    ) -> Account | RefreshFailed:
        """Refresh *stale*'s access token once (unless someone already did since *stale* was
        read). A permanent refusal marks the account NEEDS_REAUTH, unless *proactive* and the
        access token has not expired yet."""
        async with self._lock(stale.id):
            self.put(await self._store.get_account(stale.id))
            current = self._cache[stale.id]  # with a pending grant's tokens, if any
            if current.access_token != stale.access_token and current.can_publish:
                return current  # refreshed (or replaced by the user) meanwhile
            if not current.refresh_token or not self._client_id or not self._client_secret:
                missing = "refresh token" if not current.refresh_token else "OAuth client id/secret"
                failure = RefreshFailed(
                    JobError(
                        category=ErrorCategory.AUTH,
                        message=f"access token refused ({reason}) and no {missing} to refresh it",
                    ),
                    permanent=True,
                )
            elif self._is_spent(current):
                # Pinterest already answered for this refresh token: sending it again could
                # only be refused. Its successor is pending; wait for it, never re-send.
                return RefreshFailed(
                    JobError(
                        category=ErrorCategory.AUTH,
                        retryable=True,
                        message="the refresh token was already spent; its successor is not stored "
                        "yet",
                    ),
                    permanent=False,
                )
            else:
                result = await self._client.refresh_token(
                    self._client_id,
                    self._client_secret,
                    current.refresh_token,
                    base=current.api_base,
                )
                self.refreshes += 1
                if isinstance(result, TokenGrant):
                    self._spent.setdefault(current.id, set()).add(digest(current.refresh_token))
                    return await self._store_grant(current, result, reason)
                failure = result
                if result.client_refused:
                    self._app_refused(result.error.message)
                    return failure
                if result.permanent:
                    self.refused.add(current.id)
            still_valid = (
                current.access_expires_at is not None
                and current.access_expires_at > self._clock.now()
            )
            if proactive and still_valid:
                self._proactive_after[current.id] = self._clock.monotonic() + PROACTIVE_RETRY_S
                log.warning(
                    "proactive_refresh_failed",
                    account_id=current.id,
                    error=failure.error.message,
                    permanent=failure.permanent,
                )
                return failure
            if failure.permanent:
                await self._mark(current, failure.error.message)
            return failure

    async def mark_needs_reauth(self, account_id: str, reason: str) -> Account:
        """Mark the account NEEDS_REAUTH (its jobs are then held until new credentials come)."""
        async with self._lock(account_id):
            current = await self._store.get_account(account_id)
            return await self._mark(current, reason)

    def _app_refused(self, message: str) -> None:
        if not self.app_refused:
            self.app_refused = message or "client credentials refused"
            log.error(
                "app_credentials_refused",
                error=self.app_refused,
                hint="check PINSCHED_PINTEREST_CLIENT_ID / _SECRET; every account is held",
            )
            self.on_app_refused(self.app_refused)

    def app_accepted(self) -> None:
        """Pinterest took the app's client credentials again: accounts may publish."""
        if self.app_refused:
            self.app_refused = ""
            log.info("app_credentials_accepted")
            self.on_app_refused("")

    async def persist_pending(self) -> int:
        """Try again to store every pending grant; the number still pending afterwards."""
        for account_id in list(self._pending):
            async with self._lock(account_id):
                pending = self._pending.get(account_id)
                if pending is None:
                    continue
                try:
                    current = await self._store.get_account(account_id)
                except Exception:  # gone, or the store cannot read: try later
                    continue
                if not self._is_spent(current):
                    self.put(current)  # stored meanwhile, or new credentials: they win
                    continue
                await self._write_grant(current, pending, "re-persist")
        return len(self._pending)

    async def _store_grant(self, current: Account, grant: TokenGrant, reason: str) -> Account:
        """Store the new access token, its expiry and the rotated refresh token atomically."""
        now = self._clock.now()
        fresh = current.replace(
            access_token=grant.access_token,
            refresh_token=grant.refresh_token,
            access_expires_at=now + timedelta(seconds=grant.expires_in_s),
            access_ttl_s=grant.expires_in_s,
            refresh_expires_at=(
                now + timedelta(seconds=grant.refresh_expires_in_s)
                if grant.refresh_expires_in_s is not None
                else current.refresh_expires_at
            ),
            refresh_ttl_s=grant.refresh_expires_in_s or current.refresh_ttl_s,
            scopes=current.scopes if grant.scopes is None else grant.scopes,
            reauth_warned_at=None,
            needs_reauth=False,
            state_reason=current.hold_reason,  # "" unless the account is held for another cause
        )
        self.refused.discard(current.id)
        self.app_accepted()
        return await self._write_grant(current, fresh, reason, fresh_grant=True)

    async def _write_grant(
        self, current: Account, grant: Account, reason: str, *, fresh_grant: bool = False
    ) -> Account:
        """Write *grant*'s token fields onto *current* (compare-and-set); a *fresh_grant* also
        ends NEEDS_REAUTH (a re-persist keeps a mark made since). When the store fails, the
        grant stays pending in memory and is used; `persist_pending` retries."""
        tokens = token_fields(grant)
        if fresh_grant:
            tokens.update(needs_reauth=False, state_reason=grant.state_reason)
        row = current

        async def attempt() -> Account:
            nonlocal row
            current = row
            updated = current.replace(
                **tokens, version=current.version + 1, updated_at=self._clock.now()
            )
            try:
                await self._store.update_account(current, updated)
            except VersionMismatch:
                # Someone else changed the row (pacing, pause, …) while the grant was in
                # flight: the grant still holds (the old refresh token is spent), so re-apply it
                # on top — unless the user supplied new tokens meanwhile, which win.
                fresh = await self._store.get_account(current.id)
                if not self._is_spent(fresh) and (fresh.access_token != current.access_token):
                    self._pending.pop(current.id, None)
                    self._spent.pop(current.id, None)
                    self.put(fresh)
                    return self._cache[fresh.id]
                row = fresh
                raise Lost() from None
            except Exception as exc:  # disk full, I/O error: never lose the pair
                self._pending[current.id] = updated
                self.put(current)  # cached with the pending tokens
                log.error(
                    "token_store_failed",
                    account_id=current.id,
                    reason=reason,
                    error=f"{type(exc).__name__}: {exc}",
                    note="the new tokens are kept in memory and stored again",
                )
                return self._cache[current.id]
            self._pending.pop(current.id, None)
            self._spent.pop(current.id, None)
            self.put(updated)
            self._proactive_after.pop(current.id, None)
            log.info(
                "token_refreshed",
                account_id=current.id,
                reason=reason,
                expires_in_s=grant.access_ttl_s,
            )
            return updated

        return await retrying(attempt, f"account {current.id!r}")

    async def _mark(self, current: Account, reason: str) -> Account:
        row = current

        async def attempt() -> Account:
            nonlocal row
            current = row
            if current.needs_reauth:
                self.put(current)
                return current
            marked = current.replace(
                needs_reauth=True,
                state_reason=reason,
                version=current.version + 1,
                updated_at=self._clock.now(),
            )
            try:
                await self._store.update_account(current, marked)
            except VersionMismatch:
                fresh = await self._store.get_account(current.id)
                if fresh.access_token != current.access_token:
                    self.put(fresh)  # the user supplied new tokens meanwhile: they win
                    return fresh
                row = fresh
                raise Lost() from None
            self.put(marked)
            log.warning("account_needs_reauth", account_id=current.id, error=reason)
            return marked

        return await retrying(attempt, f"account {current.id!r}")
