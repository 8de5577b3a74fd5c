"""Accounts behind the API: create (tokens verified with Pinterest first), update (a new token
verified, a new posting schedule re-planned in the same transaction, held jobs released), delete
(with force, the active jobs cancelled first). `AccountAdmin`; jobs are `service.PinService`."""

from __future__ import annotations

import contextlib

from pinsched.accounts.keeper import NOT_VERIFIED, Refused, Unreachable, Verified, verify_account
from pinsched.accounts.registry import AccountRegistry
from pinsched.clock import Clock
from pinsched.core.account_changes import AccountUpdate, update_account
from pinsched.core.accounts import Account
from pinsched.core.errors import (
    AccountNotFound,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
)
from pinsched.core.jobs import JobState
from pinsched.pinterest.client import PinterestClient
from pinsched.scheduler import Scheduler
from pinsched.service import PinService
from pinsched.store import JobFilter, Store
from pinsched.store.changes import change_account

S = JobState
#: Pinterest's answer about an access token (`keeper.verify_account`).
VerifyAnswer = Verified | Refused | Unreachable
#: Answers already given during one change, by (access token, API base, ad account id).
Answers = dict[tuple[str, str, str], VerifyAnswer]


class AccountAdmin:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        registry: AccountRegistry,
        scheduler: Scheduler,
        pins: PinService,
        *,
        client: PinterestClient | None = None,
        verify_timeout_s: float = 5.0,
    ) -> None:
        self.store, self.clock, self.registry = store, clock, registry
        self.scheduler, self.pins = scheduler, pins
        self.client, self.verify_timeout_s = client, verify_timeout_s

    async def _verified(self, account: Account, answers: Answers | None = None) -> Account:
        """*account* with what Pinterest says about its access token (see CreateAccount):
        refused and not renewable → InvalidArgument naming Pinterest's answer; unreachable →
        accepted, `state_reason` says it is verified in the background. *answers* keeps
        Pinterest's answer per token, so that a retried change asks once."""
        if self.client is None:
            return account
        key = (account.access_token, account.api_base, account.ad_account_id)
        answer = None if answers is None else answers.get(key)
        if answer is None:
            answer = await verify_account(self.client, account, timeout_s=self.verify_timeout_s)
            if answers is not None:
                answers[key] = answer
        if isinstance(answer, Verified):
            return account.replace(
                username=answer.username,
                account_type=answer.account_type,
                verified_at=self.clock.now(),
            )
        if isinstance(answer, Unreachable):
            return account.replace(
                state_reason=(
                    f"{NOT_VERIFIED}: Pinterest could not be reached ({answer.message}); verifying "
                    "in the background"
                )
            )
        renewable = (
            answer.auth and bool(account.refresh_token) and (self.registry.has_client_credentials)
        )
        if renewable:
            return account.replace(
                state_reason=(
                    f"{NOT_VERIFIED}: Pinterest refused the access token ({answer.message}); "
                    "refreshing it in the background"
                )
            )
        self.client.routes.set(account.access_token, None)
        raise InvalidArgument.one(
            "account.access_token", f"Pinterest refused the access token: {answer.message}"
        )

    async def create(self, account: Account) -> Account:
        if await self._exists(account.id):
            raise AlreadyExists(f"account {account.id!r} already exists")
        account = await self._verified(account)
        created = await self.store.create_account(account)
        self.registry.put(created)
        return created

    async def get(self, account_id: str) -> Account:
        return await self.store.get_account(account_id)

    async def list(self, *, after_id: str, limit: int) -> list[Account]:
        return await self.store.list_accounts(after_id=after_id, limit=limit)

    async def _exists(self, account_id: str) -> bool:
        try:
            await self.store.get_account(account_id)
        except AccountNotFound:
            return False
        return True

    async def update_fields(self, account_id: str, update: AccountUpdate) -> Account:
        """UpdateAccount: *update* applied to the account as read (`core.accounts`), stored by
        `update`; a lost race against the daemon's own writes (a token refresh, a
        verification) is read and applied again (`store.changes.change_account`), without
        asking Pinterest about the same new token again."""
        answers: Answers = {}

        async def write(old: Account, new: Account) -> Account:
            return await self.update(old, new, answers=answers)

        return await change_account(
            self.store,
            account_id,
            lambda old: update_account(old, update, now=self.clock.now()),
            write,
        )

    async def update(
        self, old: Account, new: Account, *, answers: Answers | None = None
    ) -> Account:
        """Store the change (a new access token is verified with Pinterest first, unless
        *answers* has Pinterest's answer about it already); a new posting schedule re-plans
        the account's PENDING slotted jobs in the same transaction."""
        if new.access_token != old.access_token:  # new tokens: their scopes are not known yet
            new = await self._verified(new.replace(scopes=None), answers)
        now = self.clock.now()
        # Re-planned jobs reach the scheduler through the router (the store's events).
        updated = await self.store.update_account(old, new, replan=(now, now + self.pins.horizon))
        self.registry.put(updated)
        if updated.can_publish:
            await self.scheduler.release(updated.id)
            if old.needs_reauth or old.access_token != updated.access_token:
                await self.pins.requeue_auth_failed(updated.id)
        return updated

    async def delete(self, account_id: str, *, force: bool) -> None:
        if force:
            before = ""
            while page := await self.store.list_jobs(
                JobFilter(
                    account_id=account_id,
                    states=frozenset({S.PENDING, S.QUEUED, S.RETRYING, S.FAILED}),
                ),
                before_id=before,
                limit=500,
            ):
                before = page[-1].id
                for job in page:
                    with contextlib.suppress(FailedPrecondition):
                        await self.pins.cancel(job.id)
        await self.store.delete_account(account_id)
        self.registry.forget(account_id)
