"""What ExplainJob works with: the facts about one job (`Facts`), the answer (`Explanation`: a
phase, a hold, a pacing rule, the details, one sentence), and `pace_wait`. Pure: no I/O.

`pace_wait` reads an account's `AccountPacer` and the app-wide bucket without changing them
(the token buckets are asked on copies) and names the rule that holds a due pin the longest,
checked in the order the dispatcher checks them. `pinsched.core.explain` decides the rest.
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from pinsched.core.accounts import Account
from pinsched.core.jobs import Job, JobError, JobState
from pinsched.core.pacing import AccountPacer, TokenBucket


class Phase(enum.StrEnum):
    WAITING_FOR_TIME = "WAITING_FOR_TIME"
    HELD = "HELD"
    WAITING_FOR_PACING = "WAITING_FOR_PACING"
    SENDING = "SENDING"
    BACKOFF = "BACKOFF"
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
    REMOTE_CHANGE = "REMOTE_CHANGE"
    NEEDS_USER = "NEEDS_USER"
    FINISHED = "FINISHED"
    STAGING_MEDIA = "STAGING_MEDIA"


class Hold(enum.StrEnum):
    ACCOUNT_PAUSED = "ACCOUNT_PAUSED"
    ACCOUNT_NEEDS_REAUTH = "ACCOUNT_NEEDS_REAUTH"
    ACCOUNT_HELD = "ACCOUNT_HELD"
    APP_CREDENTIALS_REFUSED = "APP_CREDENTIALS_REFUSED"


class Rule(enum.StrEnum):
    MIN_SPACING = "MIN_SPACING"
    HOURLY_CAP = "HOURLY_CAP"
    DAILY_CAP = "DAILY_CAP"
    WRITE_BUCKET = "WRITE_BUCKET"
    APP_BUCKET = "APP_BUCKET"
    COOL_DOWN = "COOL_DOWN"


RULE_WORDS = {
    Rule.MIN_SPACING: "the account's minimum spacing between pins",
    Rule.HOURLY_CAP: "the account's hourly cap",
    Rule.DAILY_CAP: "the account's daily cap",
    Rule.WRITE_BUCKET: "the account's write rate",
    Rule.APP_BUCKET: "the app-wide write rate",
    Rule.COOL_DOWN: "a cool-down Pinterest asked for (429, spam block or quota)",
}


@dataclass(frozen=True, slots=True)
class PaceWait:
    """The rule holding a due pin and for how many seconds."""

    rule: Rule
    seconds: float


def pace_wait(pacer: AccountPacer, app_bucket: TokenBucket, mono: float) -> PaceWait | None:
    """What holds a pin of the account at monotonic *mono*, or None when it may go now. Reads
    *pacer* and *app_bucket* without changing them."""
    policy = pacer.policy
    waits: list[tuple[float, Rule]] = [(pacer.blocked_until - mono, Rule.COOL_DOWN)]
    spacing = policy.min_spacing.total_seconds()
    if spacing > 0 and pacer.last_pin is not None:
        waits.append((pacer.last_pin + spacing - mono, Rule.MIN_SPACING))
    day = [t for t in pacer.recent if t > mono - 86_400]
    if policy.max_per_day and len(day) >= policy.max_per_day:
        waits.append((day[-policy.max_per_day] + 86_400 - mono, Rule.DAILY_CAP))
    hour = [t for t in day if t > mono - 3600]
    if policy.max_per_hour and len(hour) >= policy.max_per_hour:
        waits.append((hour[-policy.max_per_hour] + 3600 - mono, Rule.HOURLY_CAP))
    longest, rule = max(waits, key=lambda w: w[0])
    if longest > 0:
        return PaceWait(rule, longest)
    probe = copy.deepcopy(pacer)  # write_delay takes a token: ask a copy
    quota = probe.quota_gap and mono < probe.quota_until and probe.last_write is not None
    if wait := probe.write_delay(mono):
        return PaceWait(Rule.COOL_DOWN if quota else Rule.WRITE_BUCKET, wait)
    if wait := copy.copy(app_bucket).try_take(mono):
        return PaceWait(Rule.APP_BUCKET, wait)
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What the daemon knows about one job at *now*."""

    job: Job
    now: datetime
    account: Account | None
    retry_until: datetime
    app_refused: str = ""
    pace: PaceWait | None = None
    queue_position: int = 0  # jobs of the account queued before this one
    failed_looks: int = 0  # failed board reads while looking for the pin
    settle_at: datetime | None = None  # when "no pin" may be concluded


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    job_id: str
    state: JobState
    phase: Phase
    summary: str
    explained_at: datetime
    next_action_at: datetime | None = None
    hold: Hold | None = None
    hold_detail: str = ""
    rule: Rule | None = None
    attempts: int = 0
    retry_until: datetime | None = None
    last_error: JobError | None = None
    board_id: str = ""
    looking_since: datetime | None = None
    failed_looks: int = 0
    outcome: str = ""
    pinterest_pin_id: str = ""
    queue_position: int = 0
    at_risk: str = ""

    @property
    def wait(self) -> timedelta:
        if self.next_action_at is None:
            return timedelta(0)
        return max(timedelta(0), self.next_action_at - self.explained_at)

    @property
    def retry_left(self) -> timedelta:
        if self.retry_until is None:
            return timedelta(0)
        return max(timedelta(0), self.retry_until - self.explained_at)


def human_delay(delta: timedelta) -> str:
    """A short duration: `45s`, `3m`, `2h05m`, `1d04h`."""
    s = max(0, round(delta.total_seconds()))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s" if s and m < 10 else f"{m}m"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"
