"""`convert.job_to_proto` fills times and durations in place (`set_timestamp`,
`set_duration`): zero values (the epoch, a zero window, a zero lateness) are still present
fields, and every value equals what building the message field by field gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from pinsched.api import convert as cv
from pinsched.core.jobs import ImageUrl, Job, JobState, PinSpec

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
times = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001 (hypothesis bounds are naive)
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=st.just(UTC),
)
deltas = st.timedeltas(min_value=timedelta(days=-9999), max_value=timedelta(days=9999))


def job(**fields: object) -> Job:
    base: dict[str, object] = {
        "id": "j",
        "account_id": "a",
        "state": JobState.SUBMITTED,
        "pin": PinSpec(board_id="1", media=ImageUrl(url="https://example.com/a.jpg")),
        "scheduled_at": EPOCH,
        "planned_at": EPOCH,
        "created_at": EPOCH,
        "updated_at": EPOCH,
    }
    return Job(**{**base, **fields})  # type: ignore[arg-type]


def test_zero_times_and_durations_are_present() -> None:
    """A job at the epoch with a zero window, lateness and retry budget has every one of those
    fields set (HasField), at zero."""
    msg = cv.job_to_proto(
        job(late_by=timedelta(0), retry_for=timedelta(0), next_attempt_at=EPOCH, delivered_at=EPOCH)
    )
    for name in (
        "scheduled_at",
        "delivery_window",
        "window_end",
        "planned_at",
        "create_time",
        "update_time",
        "late_by",
        "retry_for",
        "next_attempt_at",
        "delivered_time",
        "retry_until",
    ):
        assert msg.HasField(name), name
    assert (msg.scheduled_at.seconds, msg.scheduled_at.nanos) == (0, 0)
    assert (msg.late_by.seconds, msg.late_by.nanos) == (0, 0)


@given(
    at=times, late=deltas, window=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=9))
)
def test_in_place_fields_equal_the_built_ones(
    at: datetime, late: timedelta, window: timedelta
) -> None:
    """Each time and duration filled in place equals `timestamp_to_proto`/`duration_to_proto`
    of the same value (negative durations share the sign of seconds and nanos)."""
    msg = cv.job_to_proto(job(scheduled_at=at, planned_at=at, window=window, late_by=late))
    assert msg.scheduled_at == cv.timestamp_to_proto(at)
    assert msg.window_end == cv.timestamp_to_proto(at + window)
    assert msg.delivery_window == cv.duration_to_proto(window)
    assert msg.late_by == cv.duration_to_proto(late)
    assert cv.duration_from_proto(msg.late_by, field="late_by") == late
