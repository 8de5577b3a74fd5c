"""Cancel and update racing dispatch: thousands of randomized interleavings against one daemon.

Several accounts (each with its own dispatcher, sandbox user and board) run short rounds at the
same time: a handful of pins due within ~100 ms, and for each pin a random sequence of UpdateJob
(title, description+link, time, media) and CancelJob calls fired around its due time, while the
sandbox adds random latency and occasional 503s to pin writes. After every round, once every job
has settled, the invariants of DESIGN §3/§6 are checked against the API, the watch stream and
the sandbox. The seed is printed with every failure; rerun one with PINSCHED_RACE_SEED=<seed>.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2

from pinsched.app import Daemon
from pinsched.core.jobs import TRANSITIONS, JobState
from pinsched.sandbox import FaultRule, Sandbox
from pinsched.testing import FakeClock, MidRandom
from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2
from tests.conftest import ACCESS, REFRESH, Api, start_sandbox
from tests.integration.test_daemon import wait_states
from tests.integration.test_explain import world

J = job_pb2.Job
RU = job_pb2.RemoteUpdate
Code = grpc.StatusCode
NAMES = {v.number: v.name.removeprefix("STATE_") for v in J.State.DESCRIPTOR.values}
ACCOUNTS = 4
ROUNDS = int(os.environ.get("PINSCHED_RACE_ROUNDS", "40"))  # per account
SEED = int(os.environ.get("PINSCHED_RACE_SEED", "0")) or random.SystemRandom().randrange(1 << 30)
FIELDS = ("title", "description", "link", "media")
SETTLE_TIMEOUT_S = 20.0
STALL_S = 3.0  # a round's jobs normally rest well within this


def now() -> datetime:
    return datetime.now(UTC)


def allowed(src: int, dst: int) -> bool:
    """Whether the transition table allows *src* → *dst* (a change in place is always fine)."""
    if src == dst:
        return True
    if src == J.STATE_UNSPECIFIED:
        return dst == J.STATE_PENDING
    return JobState(NAMES[dst]) in TRANSITIONS[JobState(NAMES[src])]


# -------------------------------------------------------------------------------- harness


@dataclass
class Call:
    """One UpdateJob/CancelJob as the client saw it."""

    kind: str
    values: dict[str, str]
    before: int  # the job's version read just before the call
    after: int = 0  # ... and just after it returned
    expected_version: int = 0
    result: job_pb2.Job | None = None
    code: grpc.StatusCode | None = None
    message: str = ""


@dataclass
class Tracked:
    """A job of a round: its immutable tag (alt text), its initial values, its calls."""

    tag: str
    account: str
    job_id: str = ""
    initial: dict[str, str] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def expected(self) -> dict[str, str]:
        """The pin values the job must end with: every acknowledged update, in version order."""
        out = dict(self.initial)
        done = [c for c in self.calls if c.result is not None and c.kind != "cancel"]
        for c in sorted(done, key=lambda c: c.result.version if c.result else 0):
            out.update(c.values)
        return out

    @property
    def cancelled(self) -> bool:
        return any(c.kind == "cancel" and c.result is not None for c in self.calls)


class Follower:
    """One watch stream per account, from the start of the log: every event, in order."""

    def __init__(self, api: Api, account: str) -> None:
        self.events: list[job_pb2.JobEvent] = []
        self.latest: dict[str, job_pb2.JobEvent] = {}
        self.changed = asyncio.Event()
        self.call = api.jobs.WatchJobs(
            scheduler_pb2.WatchJobsRequest(account_id=account, since_sequence=0)
        )
        self.task = asyncio.ensure_future(self._follow())

    async def _follow(self) -> None:
        async for event in self.call:
            self.events.append(event)
            self.latest[event.job_id] = event
            self.changed.set()

    async def settled(self, seen: dict[str, int], timeout_s: float) -> None:
        """Wait until the stream has shown every job of *seen* (job id → sequence) at least up
        to that sequence, and its latest event shows it with nothing left to do. (A call's
        answer may come before its event reaches a watcher: on PostgreSQL events go to the
        watchers through the cluster feed, which reads the log after the commit.)"""

        def done(job_id: str) -> bool:
            latest = self.latest.get(job_id)
            return latest is not None and latest.sequence >= seen[job_id] and resting(latest)

        async with asyncio.timeout(timeout_s):
            while not all(done(i) for i in seen):
                self.changed.clear()
                await self.changed.wait()

    def close(self) -> None:
        self.call.cancel()
        self.task.cancel()


def made_by(kind: str, reason: str) -> bool:
    """Whether a history entry with *reason* is the change an API call of *kind* makes."""
    if kind == "cancel":
        return reason.startswith(("cancelled before submission", "cancel requested"))
    return reason.startswith("updated:")


def resting(event: job_pb2.JobEvent | None) -> bool:
    if event is None:
        return False
    if event.to_state == J.STATE_DELIVERED:
        return event.job.remote_update.state != RU.STATE_PENDING
    return event.to_state in (J.STATE_CANCELLED, J.STATE_FAILED, J.STATE_PERMANENTLY_FAILED)


@dataclass
class Race:
    api: Api
    sandbox: Sandbox
    followers: dict[str, Follower]
    seed: int
    calls: int = 0
    jobs: int = 0
    tracked: list[Tracked] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    async def get(self, job_id: str) -> job_pb2.Job:
        return await self.api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job_id))

    # ------------------------------------------------------------------- one round

    async def round(self, account: str, number: int, rng: random.Random) -> None:
        board = board_of(account)
        tracked = []
        for i in range(rng.randint(3, 7)):
            tag = f"{account}-r{number}-j{i}"
            values = {
                "title": f"{tag} t0",
                "description": "d0",
                "link": f"https://x.test/{tag}/0",
                "media": f"https://img.test/{tag}/0.jpg",
            }
            req = self.api.pin_request(
                at=now() + timedelta(seconds=rng.uniform(0.0, 0.12)),
                title=values["title"],
                account_id=account,
                board_id=board,
                description=values["description"],
                link=values["link"],
                alt_text=tag,
            )
            req.pin.media_source.image_url.url = values["media"]
            job = await self.api.jobs.SchedulePin(req)
            tracked.append(Tracked(tag=tag, account=account, job_id=job.id, initial=values))
        await asyncio.gather(*(self.meddle(t, random.Random(rng.getrandbits(64))) for t in tracked))
        await self.settle(account, number, tracked)
        for t in tracked:
            await self.check(t)
        self.jobs += len(tracked)
        self.tracked.extend(tracked)

    async def settle(self, account: str, number: int, tracked: list[Tracked]) -> None:
        """Wait for every job of the round to rest."""
        follower = self.followers[account]
        waited = 0.0
        while True:
            jobs = [await self.get(t.job_id) for t in tracked]
            seen = {j.id: j.history[-1].sequence for j in jobs}
            try:
                await follower.settled(seen, STALL_S)
                return
            except TimeoutError:
                waited += STALL_S
            if waited >= SETTLE_TIMEOUT_S:
                self.fail(
                    f"round {account}/{number}: jobs did not settle within "
                    f"{waited:g}s: "
                    + "; ".join(
                        f"{j.id} {NAMES[j.state]} v{j.version} "
                        f"[{' > '.join(h.reason for h in j.history)}]"
                        for j in jobs
                        if not resting(follower.latest.get(j.id))
                    )
                )
                return

    async def meddle(self, t: Tracked, rng: random.Random) -> None:
        """Fire a random sequence of updates and cancels at the job around its due time."""
        await asyncio.sleep(rng.uniform(0.0, 0.15))  # fuzzing the moment, not waiting for state
        for n in range(1, rng.randint(0, 5) + 1):
            kind = rng.choices(
                ("title", "text", "time", "media", "cancel"), weights=(30, 20, 12, 12, 14)
            )[0]
            await self.call(t, kind, n, rng)
            await asyncio.sleep(rng.uniform(0.0, 0.06))

    async def call(self, t: Tracked, kind: str, n: int, rng: random.Random) -> None:
        before = await self.get(t.job_id)
        call = Call(kind=kind, values={}, before=before.version)
        if rng.random() < 0.25:
            call.expected_version = before.version
        try:
            if kind == "cancel":
                call.result = await self.api.jobs.CancelJob(
                    scheduler_pb2.CancelJobRequest(
                        job_id=t.job_id, expected_version=call.expected_version
                    )
                )
            else:
                call.result = await self.api.jobs.UpdateJob(
                    self.update_request(t, kind, n, call, rng)
                )
        except grpc.aio.AioRpcError as err:
            call.code, call.message = err.code(), err.details() or ""
        call.after = (await self.get(t.job_id)).version
        t.calls.append(call)
        self.calls += 1

    def update_request(
        self, t: Tracked, kind: str, n: int, call: Call, rng: random.Random
    ) -> scheduler_pb2.UpdateJobRequest:
        job = J(id=t.job_id)
        if kind == "title":
            call.values = {"title": f"{t.tag} t{n}"}
            job.pin.title = call.values["title"]
            paths = ["pin.title"]
        elif kind == "text":
            call.values = {"description": f"d{n}", "link": f"https://x.test/{t.tag}/{n}"}
            job.pin.description, job.pin.link = call.values["description"], call.values["link"]
            paths = ["pin.description", "pin.link"]
        elif kind == "media":
            call.values = {"media": f"https://img.test/{t.tag}/{n}.jpg"}
            job.pin.media_source.image_url.url = call.values["media"]
            paths = ["pin.media_source"]
        else:
            offset = rng.uniform(0.0, 0.1) if n else 0.0
            job.scheduled_at.FromDatetime(now() + timedelta(seconds=offset))
            paths = ["scheduled_at"]
        return scheduler_pb2.UpdateJobRequest(
            job=job,
            update_mask=field_mask_pb2.FieldMask(paths=paths),
            expected_version=call.expected_version,
        )

    # ------------------------------------------------------------------- invariants

    def fail(self, problem: str) -> None:
        self.problems.append(problem)

    async def check(self, t: Tracked) -> None:
        job = await self.get(t.job_id)
        where = f"{t.tag} ({job.id}, {NAMES[job.state]} v{job.version})"
        history = [(NAMES[h.from_state], NAMES[h.to_state], h.reason) for h in job.history]

        # versions: one history entry per version, chained, allowed, in sequence order
        if len(job.history) != job.version:
            self.fail(f"{where}: {len(job.history)} history entries for version {job.version}")
        seqs = [h.sequence for h in job.history]
        if seqs != sorted(set(seqs)):
            self.fail(f"{where}: history sequences not strictly increasing: {seqs}")
        prev = J.STATE_UNSPECIFIED
        for h in job.history:
            if h.from_state != prev or not allowed(h.from_state, h.to_state):
                self.fail(
                    f"{where}: bad transition {NAMES[h.from_state]}→{NAMES[h.to_state]} "
                    f"after {NAMES[prev]}: {history}"
                )
            prev = h.to_state
        watched = [e.sequence for e in self.followers[t.account].events if e.job_id == job.id]
        if watched != seqs:
            self.fail(f"{where}: watch stream sequences {watched} != history {seqs}")

        # calls: every answer agrees with the job's history
        for c in t.calls:
            self.check_call(t, job, c, where)

        # no update lost: the stored pin holds the last acknowledged values of every field
        stored = {
            "title": job.pin.title,
            "description": job.pin.description,
            "link": job.pin.link,
            "media": job.pin.media_source.image_url.url,
        }
        if stored != t.expected():
            self.fail(
                f"{where}: stored pin {stored} != last acknowledged values "
                f"{t.expected()}; calls: {describe(t.calls)}"
            )
        if t.cancelled and job.state != J.STATE_CANCELLED:
            self.fail(f"{where}: acknowledged cancel but ended {NAMES[job.state]}: {history}")

        # the sandbox: a CANCELLED job has no live pin, a DELIVERED one exactly one, current
        live = [p for p in self.sandbox.state.pins.values() if p.alt_text == t.tag]
        if job.state == J.STATE_DELIVERED:
            if job.remote_update.state not in (RU.STATE_UNSPECIFIED, RU.STATE_APPLIED):
                self.fail(f"{where}: remote update ended {job.remote_update}")
            if [p.id for p in live] != [job.pinterest_pin_id]:
                self.fail(
                    f"{where}: live pins {[p.id for p in live]}, job has {job.pinterest_pin_id!r}"
                )
            for pin in live:
                on_pinterest = {
                    "title": pin.title or "",
                    "description": pin.description or "",
                    "link": pin.link or "",
                    "media": pin.sources[0] if pin.sources else "",
                }
                if on_pinterest != stored:
                    self.fail(
                        f"{where}: live pin {on_pinterest} != stored {stored}; "
                        f"calls: {describe(t.calls)}; history: {history}"
                    )
        elif live:
            self.fail(f"{where}: {len(live)} live pin(s) for a {NAMES[job.state]} job: {history}")
        if job.state in (J.STATE_FAILED, J.STATE_PERMANENTLY_FAILED):
            self.fail(f"{where}: unexpected end state: {history}")

    def check_call(self, t: Tracked, job: job_pb2.Job, c: Call, where: str) -> None:
        states_between = {job.history[v - 1].to_state for v in range(max(1, c.before), c.after + 1)}
        said = f"{where}: {c.kind} (v{c.before}→v{c.after})"
        if c.result is not None:
            got = c.result
            if not c.before <= got.version <= c.after:
                self.fail(f"{said} answered v{got.version} outside v{c.before}..v{c.after}")
                return
            if job.history[got.version - 1].to_state != got.state:
                self.fail(
                    f"{said} answered {NAMES[got.state]} v{got.version}, but that "
                    f"version is {NAMES[job.history[got.version - 1].to_state]}"
                )
            own = [
                v
                for v in range(c.before + 1, got.version + 1)
                if made_by(c.kind, job.history[v - 1].reason)
            ]
            if c.kind == "cancel":
                ok = got.state in (J.STATE_CANCELLED, J.STATE_CANCELLING) or (
                    got.state == J.STATE_SUBMITTED and got.cancel_requested
                )
                if not ok or len(own) > 1:
                    self.fail(f"{said} answered {NAMES[got.state]} after {len(own)} changes")
                return
            if len(own) != 1:
                self.fail(f"{said} answered v{got.version} after {len(own)} updates of its own")
                return
            (mine,) = own
            if c.expected_version and mine != c.expected_version + 1:
                self.fail(f"{said} with expected_version {c.expected_version} made v{mine}")
            if mine != got.version:  # answered with changes made after it
                self.fail(
                    f"{said} answered {NAMES[got.state]} v{got.version}, but made "
                    f"v{mine} ({NAMES[job.history[mine - 1].to_state]})"
                )
            applied_in = job.history[mine - 1].to_state
            if applied_in not in (
                J.STATE_PENDING,
                J.STATE_QUEUED,
                J.STATE_RETRYING,
                J.STATE_DELIVERED,
                J.STATE_FAILED,
            ):
                self.fail(f"{said} applied in {NAMES[applied_in]}")
            if applied_in == J.STATE_DELIVERED and c.kind in ("time", "media"):
                self.fail(f"{said} changed {c.kind} of a delivered pin")
            return
        if c.code == Code.ABORTED:
            m = re.search(r"at version (\d+)", c.message)
            current = int(m.group(1)) if m else -1
            if not c.expected_version or not c.before < current <= c.after:
                self.fail(
                    f"{said} ABORTED ({c.message}) with expected_version {c.expected_version}"
                )
            return
        if c.code != Code.FAILED_PRECONDITION:
            self.fail(f"{said} failed with {c.code}: {c.message}")
            return
        m = re.search(r" is ([A-Z_]+)", c.message)
        named = m.group(1) if m else ""
        number = {v: k for k, v in NAMES.items()}.get(named)
        if number is None or number not in states_between:
            self.fail(
                f"{said} refused saying {c.message!r}, but the job was "
                f"{sorted(NAMES[s] for s in states_between)} meanwhile"
            )
            return
        if c.kind == "cancel":
            if named != "PERMANENTLY_FAILED":
                self.fail(f"{said} cancel refused: {c.message}")
        elif named == "SUBMITTED":
            if "being confirmed" not in c.message:
                self.fail(f"{said}: {c.message}")
        elif named == "DELIVERED":
            if c.kind not in ("time", "media") or "cancel the job" not in c.message:
                self.fail(f"{said} refused on a delivered pin: {c.message}")
        elif named not in ("CANCELLING", "CANCELLED", "PERMANENTLY_FAILED"):
            self.fail(f"{said} refused: {c.message}")


def describe(calls: list[Call]) -> str:
    out = []
    for c in calls:
        if c.result is not None:
            res = f"ok v{c.result.version} {NAMES[c.result.state]}"
        else:
            res = f"{c.code.name if c.code else '?'} {c.message[:60]!r}"
        out.append(f"{c.kind}{c.values or ''}@v{c.before}: {res}")
    return "; ".join(out)


def board_of(account: str) -> str:
    return f"30{account[-1]}"


def add_faults(sandbox: Sandbox) -> None:
    """Random latency on pin writes (never near the 2 s client timeout) and occasional 503s."""
    for method in ("POST", "PATCH", "DELETE"):
        sandbox.add_fault(FaultRule(kind="latency", method=method, latency_ms=15, probability=0.4))
        sandbox.add_fault(FaultRule(kind="latency", method=method, latency_ms=60, probability=0.2))
        sandbox.add_fault(
            FaultRule(kind="latency", method=method, latency_ms=150, probability=0.05)
        )
        sandbox.add_fault(FaultRule(kind="status", method=method, status=503, probability=0.02))


@pytest.fixture
async def race(make_daemon: Callable[..., Daemon]) -> AsyncIterator[Race]:
    sandbox = Sandbox(seed=SEED)
    await sandbox.start()
    sandbox.set_client("client-1", "client-secret-1")
    daemon = make_daemon(
        base_url=sandbox.base_url, retry_base_delay_s=0.05, retry_max_delay_s=0.5, max_attempts=30
    )
    await daemon.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{daemon.port}")
    api = Api(channel, daemon)
    followers: dict[str, Follower] = {}
    try:
        for i in range(ACCOUNTS):
            account = f"acct{i}"
            sandbox.add_user(f"u{i}", access_token=f"pina_u{i}", board_ids=[board_of(account)])
            await api.accounts.CreateAccount(
                account_pb2.CreateAccountRequest(
                    account_id=account,
                    account=account_pb2.Account(
                        access_token=f"pina_u{i}", pacing=account_pb2.Pacing(writes_per_minute=0)
                    ),
                )
            )
            followers[account] = Follower(api, account)
        add_faults(sandbox)
        yield Race(api, sandbox, followers, SEED)
    finally:
        for f in followers.values():
            f.close()
        await channel.close(None)
        await daemon.stop(grace_s=1.0)
        await sandbox.stop()


async def test_cancel_and_update_race_dispatch(race: Race) -> None:
    """Under random interleavings of updates and cancels with dispatch, latency and 503s, no
    cancelled job has a live pin, every delivered job has exactly one current pin, no update is
    lost or half-applied, every refusal names the state that caused it, and versions, history
    and the watch stream agree change for change."""
    rng = random.Random(race.seed)
    seeds = {f"acct{i}": rng.getrandbits(64) for i in range(ACCOUNTS)}

    async def account_rounds(account: str) -> None:
        r = random.Random(seeds[account])
        for number in range(ROUNDS):
            await race.round(account, number, r)
            if len(race.problems) > 20:
                return

    await asyncio.gather(*(account_rounds(a) for a in seeds))
    for t in race.tracked:  # and once more at the end: nothing moved after its round
        await race.check(t)
    for account, follower in race.followers.items():
        seqs = [e.sequence for e in follower.events]
        assert seqs == sorted(set(seqs)), f"seed {race.seed}: {account} watch not increasing"
    live_tags = defaultdict(list)
    for pin in race.sandbox.state.pins.values():
        live_tags[pin.alt_text].append(pin.id)
    doubled = {tag: ids for tag, ids in live_tags.items() if len(ids) > 1}
    assert not doubled, f"seed {race.seed}: duplicate pins {doubled}"
    print(f"race seed {race.seed}: {race.jobs} jobs, {race.calls} update/cancel calls")
    assert not race.problems, f"PINSCHED_RACE_SEED={race.seed}:\n" + "\n".join(race.problems)
    assert race.calls >= 1000


# ------------------------------------------------------------------ targeted known bugs


async def _oauth_request_seen(sandbox: Sandbox) -> None:
    """Wait until the sandbox logged a token request (woken by every write it handles)."""
    changed = sandbox._changed  # the sandbox's own "something happened" condition
    async with asyncio.timeout(5), changed:
        await changed.wait_for(lambda: any(r.path == "/v5/oauth/token" for r in sandbox.requests))


async def test_update_between_dispatch_read_and_submit_is_not_lost(
    make_daemon: Callable[..., Daemon], sandbox: Sandbox
) -> None:
    """A title update committed after the dispatcher re-read a QUEUED job but before it recorded
    SUBMITTED (here: while a proactive token refresh hangs) does not strand the job: it is still
    published, with the new title."""
    daemon = make_daemon(token_keeper=False)  # the refresh that hangs is the dispatcher's own
    api = await Api.open(daemon)
    try:
        account = account_pb2.Account(access_token=ACCESS, refresh_token=REFRESH)
        account.access_token_expire_time.FromDatetime(now() + timedelta(hours=1))
        await api.accounts.CreateAccount(
            account_pb2.CreateAccountRequest(account_id="acme", account=account)
        )
        sandbox.add_fault(
            FaultRule(
                kind="lost_response",
                mode="hang",
                hold_s=5.0,
                path_prefix="/v5/oauth/token",
                times=1,
            )
        )
        job = await api.jobs.SchedulePin(api.pin_request(at=now(), title="before"))
        await _oauth_request_seen(sandbox)  # the dispatcher has re-read the job and waits
        got = await api.jobs.UpdateJob(
            scheduler_pb2.UpdateJobRequest(
                job=J(id=job.id, pin=job_pb2.Pin(title="after")),
                update_mask=field_mask_pb2.FieldMask(paths=["pin.title"]),
            )
        )
        assert got.state == J.STATE_QUEUED
        try:
            await wait_states(api, [job.id], {J.STATE_DELIVERED}, timeout_s=5.0)
        except TimeoutError:
            got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
            raise AssertionError(
                f"stuck {NAMES[got.state]}: {[h.reason for h in got.history]}"
            ) from None
        assert [p["title"] for p in sandbox.pins()] == ["after"]
    finally:
        await api.close()


async def test_concurrent_updates_of_different_fields_both_stick(
    make_daemon: Callable[..., Daemon], sandbox: Sandbox
) -> None:
    """Two UpdateJob calls at the same time on different fields of one job (no
    expected_version) both succeed and the job ends with both new values."""
    daemon = make_daemon()
    api = await Api.open(daemon)
    try:
        await api.create_account()
        lost = []
        for i in range(40):
            job = await api.jobs.SchedulePin(api.pin_request(at=now() + timedelta(hours=1)))
            title = scheduler_pb2.UpdateJobRequest(
                job=J(id=job.id, pin=job_pb2.Pin(title=f"title {i}")),
                update_mask=field_mask_pb2.FieldMask(paths=["pin.title"]),
            )
            text = scheduler_pb2.UpdateJobRequest(
                job=J(id=job.id, pin=job_pb2.Pin(description=f"description {i}")),
                update_mask=field_mask_pb2.FieldMask(paths=["pin.description"]),
            )
            a, b = await asyncio.gather(api.jobs.UpdateJob(title), api.jobs.UpdateJob(text))
            assert {a.version, b.version} == {2, 3}
            got = await api.jobs.GetJob(scheduler_pb2.GetJobRequest(job_id=job.id))
            if (got.pin.title, got.pin.description) != (f"title {i}", f"description {i}"):
                lost.append((got.pin.title, got.pin.description))
        assert not lost, f"{len(lost)} of 40 jobs lost an update: {lost[:3]}"
    finally:
        await api.close()


async def test_a_patch_retried_on_a_timer_never_puts_back_an_older_text(
    make_daemon: Callable[..., Daemon],
) -> None:
    """A PATCH of a published pin fails and is retried on a timer; a newer update is sent and
    applied before the timer fires. The retry reads the job again and has nothing left to
    send: it does not PATCH the older title back over the newer one."""
    clock = FakeClock()
    sandbox = await start_sandbox(clock)
    api = await Api.open(make_daemon(clock, base_url=sandbox.base_url, token_keeper=False))

    async def title(text: str) -> None:
        await api.jobs.UpdateJob(
            scheduler_pb2.UpdateJobRequest(
                job=J(id=job.id, pin=job_pb2.Pin(title=text)),
                update_mask=field_mask_pb2.FieldMask(paths=["pin.title"]),
            )
        )

    try:
        await api.create_account(writes_per_minute=100)
        job = await api.jobs.SchedulePin(
            api.pin_request(at=clock.now() + timedelta(seconds=10), title="one")
        )
        await clock.advance(10)
        await api.reach(job.id, J.STATE_DELIVERED)
        sandbox.add_fault(FaultRule(kind="status", method="PATCH", status=503, times=1))
        await title("two")
        await api.until(job.id, lambda e: e.reason.startswith("update of the pin will be retried"))
        await title("three")
        await api.until(job.id, lambda e: e.reason == "pin updated on Pinterest")
        await clock.advance(3600)  # every retry timer has fired
        await asyncio.wait_for(api.daemon.activity.idle.wait(), 10)
        assert [p["title"] for p in sandbox.pins()] == ["three"]
        assert [r.status for r in sandbox.requests if r.method == "PATCH"] == [503, 200]
        assert (await api.get(job.id)).pin.title == "three"
    finally:
        await api.close()
        await sandbox.stop()


async def test_a_newer_retry_timer_replaces_the_pending_one(
    make_daemon: Callable[..., Daemon],
) -> None:
    """A PATCH fails and is retried on a timer; before it fires, a newer update is sent, fails
    too and sets its own timer. The job keeps one retry chain: the older timer no longer sends
    a third PATCH a moment after the second, so the pin's requests keep to their backoff."""
    async with world(make_daemon) as w:
        api, clock, sandbox = w.api, w.clock, w.sandbox
        api.daemon.dispatchers.rng = MidRandom()  # the first retry waits (0.2 + 2) / 2 = 1.1 s

        async def title(text: str, after: int) -> int:
            """Update the title; the sequence of the event saying its PATCH will be retried."""
            await api.jobs.UpdateJob(
                scheduler_pb2.UpdateJobRequest(
                    job=J(id=job_id, pin=job_pb2.Pin(title=text)),
                    update_mask=field_mask_pb2.FieldMask(paths=["pin.title"]),
                )
            )
            retried = "update of the pin will be retried"
            events = await api.until(job_id, lambda e: e.reason.startswith(retried), after=after)
            return events[-1].sequence

        def patches() -> list[int]:
            return [r.status for r in sandbox.requests if r.method == "PATCH"]

        async def advance(seconds: float) -> None:
            await clock.advance(seconds)
            await asyncio.wait_for(api.daemon.activity.idle.wait(), 10)

        await api.create_account(writes_per_minute=600)
        job_id = await w.schedule(10, title="one")
        await clock.advance(10)
        delivered = await api.until(job_id, lambda e: e.to_state == J.STATE_DELIVERED)
        sandbox.add_fault(FaultRule(kind="status", method="PATCH", status=503, times=3))
        seq = await title("two", delivered[-1].sequence)  # its retry is due 1.1 s from now
        await clock.advance(1.0)
        await title("three", seq)  # fails too: a new timer, due after the first one
        await advance(0.2)  # past the first timer's time
        assert patches() == [503, 503]
        await advance(60)  # the third failure's timer
        await advance(60)  # the next one's
        assert patches() == [503, 503, 503, 200]
        assert [p["title"] for p in sandbox.pins()] == ["three"]
