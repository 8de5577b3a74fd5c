"""The pure parts of ExplainJob and of the at-risk notes: reading the pace without taking from
it, naming the rule that holds a pin, and telling a note from a change."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from pinsched.core import notes
from pinsched.core.accounts import Pacing
from pinsched.core.explanation import Rule, human_delay, pace_wait
from pinsched.core.jobs import JobState, Transition
from pinsched.core.pacing import AccountPacer, TokenBucket

T0 = datetime(2027, 1, 4, 9, tzinfo=UTC)


def _state(pacer: AccountPacer) -> tuple[object, ...]:
    return (
        pacer.bucket.tokens,
        pacer.bucket.updated,
        pacer.bucket.rate,
        list(pacer.recent),
        pacer.last_write,
        pacer.slowdown,
        pacer.slowed_at,
    )


def test_pace_wait_reads_without_taking() -> None:
    """Asking what holds a pin takes no token from the account's or the app's bucket, and
    asking twice answers the same."""
    pacer = AccountPacer(Pacing(writes_per_minute=1))
    pacer.record_pin(0.0)
    assert pacer.write_delay(0.0) == 0.0  # the only token is gone
    app = TokenBucket.per_minute(60)
    before, app_before = _state(pacer), copy.copy(app)
    first = pace_wait(pacer, app, 10.0)
    assert first == pace_wait(pacer, app, 10.0)
    assert first is not None
    assert first.rule is Rule.WRITE_BUCKET
    assert abs(first.seconds - 50.0) < 1e-6
    assert _state(pacer) == before
    assert (app.tokens, app.updated) == (app_before.tokens, app_before.updated)


def test_pace_wait_names_the_longest_rule_as_the_dispatcher_waits() -> None:
    """Spacing, hourly and daily caps and a cool-down each name themselves, the longest wins,
    and the wait equals what the pacer itself would make the dispatcher wait."""
    app = TokenBucket(rate=0.0, capacity=0.0)
    cases = [
        (Pacing(min_spacing=timedelta(minutes=10)), Rule.MIN_SPACING),
        (Pacing(max_per_hour=1), Rule.HOURLY_CAP),
        (Pacing(max_per_day=1), Rule.DAILY_CAP),
        (Pacing(min_spacing=timedelta(minutes=10), max_per_day=1), Rule.DAILY_CAP),
    ]
    for policy, rule in cases:
        pacer = AccountPacer(policy)
        pacer.record_pin(100.0)
        found = pace_wait(pacer, app, 160.0)
        assert found is not None
        assert found.rule is rule, policy
        assert abs(found.seconds - copy.deepcopy(pacer).pin_delay(160.0)) < 1e-6
    cool = AccountPacer(Pacing())
    cool.rate_limited(0.0, 120.0)
    found = pace_wait(cool, app, 20.0)
    assert found is not None
    assert (found.rule, found.seconds) == (Rule.COOL_DOWN, 100.0)
    assert pace_wait(AccountPacer(Pacing()), app, 0.0) is None


def test_human_delay() -> None:
    """Short durations read like a person would say them."""
    assert [human_delay(timedelta(seconds=s)) for s in (0, 45, 180, 190, 3900, 90_000)] == [
        "0s",
        "45s",
        "3m",
        "3m10s",
        "1h05m",
        "1d01h",
    ]


def test_notes_are_told_apart_and_the_last_one_counts() -> None:
    """An at-risk note is typed by its reason only when the state did not change; the last of
    `at risk` / `at risk cleared` says whether a job is at risk (read back after a restart)."""
    P = JobState.PENDING
    risk = Transition(from_state=P, to_state=P, time=T0, reason=notes.AT_RISK + "board gone")
    cleared = Transition(from_state=P, to_state=P, time=T0, reason=notes.AT_RISK_CLEARED + "ok")
    moved = Transition(from_state=P, to_state=JobState.QUEUED, time=T0, reason=notes.AT_RISK + "x")
    assert notes.note_type(risk) == "job.at_risk"
    assert notes.note_type(cleared) == "job.at_risk_cleared"
    assert notes.note_type(moved) is None
    assert notes.last_risk((risk,)) == "board gone"
    assert notes.last_risk((risk, cleared)) == ""
    assert notes.last_risk((cleared, risk)) == "board gone"
    assert notes.last_risk(()) == ""


def test_history_at_a_version_keeps_its_changes_and_notes_and_no_later_change() -> None:
    """A job's log read just after its row may hold a later version's change: `history_at`
    keeps the first *version* changes and the notes among and after them, nothing later."""
    P, Q = JobState.PENDING, JobState.QUEUED

    def change(reason: str, to: JobState = P) -> Transition:
        return Transition(from_state=P, to_state=to, time=T0, reason=reason)

    note = Transition(from_state=P, to_state=P, time=T0, reason=notes.AT_RISK + "board gone")
    log = (change("scheduled"), note, change("updated: pin.title"), note, change("due", Q))
    assert notes.history_at(log, 1) == log[:2]
    assert notes.history_at(log, 2) == log[:4]
    assert notes.history_at(log, 3) == log
    assert notes.history_at(log, 9) == log  # fewer changes than the version: all there is
    assert notes.history_at((), 1) == ()
