"""Tests of the `pinsched` command line that need no daemon: parsing and flag→request building."""

from __future__ import annotations

import argparse
import os
from datetime import timedelta
from pathlib import Path

import pytest

from pinsched.cli.main import main
from pinsched.cli.parser import build_parser
from pinsched.cli.requests import (
    UsageError,
    build_account,
    build_job_update,
    build_schedule_request,
)
from pinsched.v1 import job_pb2, scheduler_pb2
from pinsched_client import parse_duration, parse_state, parse_utc_offset

UNUSED_TARGET = "127.0.0.1:1"  # nothing listens here: a call that was sent would fail with 14
BASE = ["schedule", "--account", "acme", "--board", "123", "--image-url", "https://e.com/a.jpg"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's PINSCHED_* variables must not leak into these tests."""
    for name in [n for n in os.environ if n.startswith("PINSCHED_")]:
        monkeypatch.delenv(name)


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("0.5s", timedelta(milliseconds=500)),
        ("0s", timedelta(0)),
    ],
)
def test_duration_forms(text: str, expected: timedelta) -> None:
    """Durations are written as numbers with a unit, optionally summed."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "90", "10x", "m10", "1h-5m", "2 hours"])
def test_bad_durations_are_refused(text: str) -> None:
    """A duration without a known unit raises ValueError."""
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)


def test_bad_window_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed --window is a usage error (exit 2) that names the flag."""
    with pytest.raises(SystemExit) as caught:
        main([*BASE, "--at", "2026-12-01T14:00Z", "--window", "2hours"])
    assert caught.value.code == 2
    assert "--window" in capsys.readouterr().err


def test_bad_retry_for_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed --retry-for is a usage error (exit 2) that names the flag."""
    with pytest.raises(SystemExit) as caught:
        main([*BASE, "--at", "2026-12-01T14:00Z", "--retry-for", "a day"])
    assert caught.value.code == 2
    assert "--retry-for" in capsys.readouterr().err


def test_retry_for_flag_sets_the_request_field() -> None:
    """`--retry-for 6h` becomes `retry_for` on the request; without it the field is unset."""
    request = build_schedule_request(_args(*BASE, "--at", "2026-12-01T15:00Z", "--retry-for", "6h"))
    assert request.retry_for.ToTimedelta() == timedelta(hours=6)
    bare = build_schedule_request(_args(*BASE, "--at", "2026-12-01T15:00Z"))
    assert not bare.HasField("retry_for")


def test_naive_at_exits_2_before_sending(capsys: pytest.CaptureFixture[str]) -> None:
    """`--at` without an offset exits 2 with a clear message, without calling the daemon."""
    code = main([*BASE, "--at", "2026-03-08T02:30", "--target", UNUSED_TARGET])
    assert code == 2
    err = capsys.readouterr().err
    assert "--at" in err
    assert "no UTC offset" in err


def test_schedule_request_from_flags() -> None:
    """Every `schedule` flag lands in its field of the SchedulePinRequest."""
    request = build_schedule_request(
        _args(
            *BASE,
            "--at", "2026-12-01T15:00+01:00",
            "--window", "2h",
            "--title", "Hello",
            "--description", "World",
            "--link", "https://e.com/",
            "--alt-text", "A cat",
            "--board-section", "77",
            "--request-id", "req-1",
        )
    )  # fmt: skip
    assert request.request_id == "req-1"
    assert request.account_id == "acme"
    assert request.pin.board_id == "123"
    assert request.pin.board_section_id == "77"
    assert (request.pin.title, request.pin.description) == ("Hello", "World")
    assert (request.pin.link, request.pin.alt_text) == ("https://e.com/", "A cat")
    assert request.pin.media_source.image_url.url == "https://e.com/a.jpg"
    assert request.WhichOneof("time") == "scheduled_at"
    assert request.scheduled_at.ToJsonString() == "2026-12-01T14:00:00Z"
    assert request.delivery_window.seconds == 7200
    assert request.nonexistent_time_policy == scheduler_pb2.NONEXISTENT_TIME_POLICY_UNSPECIFIED


def test_request_id_left_empty_for_the_client_to_fill() -> None:
    """Without --request-id the request carries none: AsyncClient fills a uuid4 when sending."""
    request = build_schedule_request(_args(*BASE, "--at", "2026-12-01T14:00Z"))
    assert request.request_id == ""
    assert not request.HasField("delivery_window")


def test_local_time_with_zone() -> None:
    """--local with --tz becomes `local_time` with `time_zone.id`, and the DST policies apply."""
    request = build_schedule_request(
        _args(
            *BASE,
            "--local", "2026-03-08T02:30",
            "--tz", "America/New_York",
            "--nonexistent", "shift-forward",
            "--ambiguous", "later",
        )
    )  # fmt: skip
    assert request.WhichOneof("time") == "local_time"
    local = request.local_time
    assert (local.year, local.month, local.day, local.hours, local.minutes) == (2026, 3, 8, 2, 30)
    assert local.time_zone.id == "America/New_York"
    assert request.nonexistent_time_policy == scheduler_pb2.NONEXISTENT_TIME_POLICY_SHIFT_FORWARD
    assert request.ambiguous_time_policy == scheduler_pb2.AMBIGUOUS_TIME_POLICY_LATER


def test_local_time_with_utc_offset() -> None:
    """--local with --utc-offset becomes `local_time` with `utc_offset` in seconds."""
    args = _args(*BASE, "--local", "2026-06-01T09:15", "--utc-offset=-04:30")
    local = build_schedule_request(args).local_time
    assert local.WhichOneof("time_offset") == "utc_offset"
    assert local.utc_offset.seconds == -(4 * 3600 + 30 * 60)
    assert parse_utc_offset("+2") == timedelta(hours=2)
    assert parse_utc_offset("Z") == timedelta(0)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--local", "2026-03-08T02:30"], "--local needs --tz"),
        (["--local", "2026-03-08T02:30", "--tz", "Mars/Olympus"], "unknown IANA time zone"),
        (["--local", "2026-03-08T02:30+01:00", "--tz", "Europe/Paris"], "carries an offset"),
        (["--local", "2026-03-08T02:30", "--utc-offset", "+25:00"], "bad UTC offset"),
        (["--at", "2026-12-01T14:00Z", "--tz", "Europe/Paris"], "go with --local"),
        (["--at", "tomorrow"], "not an ISO 8601"),
        ([], "give the time"),
    ],
)
def test_bad_time_flags_are_usage_errors(flags: list[str], message: str) -> None:
    """Inconsistent or malformed time flags raise UsageError naming the problem."""
    with pytest.raises(UsageError, match=message):
        build_schedule_request(_args(*BASE, *flags))


def test_media_variants(tmp_path: Path) -> None:
    """A repeated --image-url is a carousel; --image-file is sent inline with its content type."""
    head = ["schedule", "--account", "a", "--board", "1", "--at", "2026-12-01T14:00Z"]
    urls = ["--image-url", "https://e.com/1.jpg", "--image-url", "https://e.com/2.jpg"]
    carousel = build_schedule_request(_args(*head, *urls)).pin.media_source
    assert [item.url for item in carousel.multiple_image_urls.items] == [
        "https://e.com/1.jpg",
        "https://e.com/2.jpg",
    ]
    image = tmp_path / "cat.PNG"
    image.write_bytes(b"\x89PNG")
    inline = build_schedule_request(_args(*head, "--image-file", str(image))).pin.media_source
    assert inline.image_base64.content_type == "image/png"
    assert inline.image_base64.data == b"\x89PNG"
    with pytest.raises(UsageError, match="give the pin's media"):
        build_schedule_request(_args(*head))
    with pytest.raises(UsageError, match="one media source"):
        build_schedule_request(_args(*head, *urls, "--image-file", str(image)))
    with pytest.raises(UsageError, match=r"expected a \.jpg"):
        build_schedule_request(_args(*head, "--image-file", str(tmp_path / "cat.gif")))


def test_update_mask_lists_only_the_flags_given() -> None:
    """`update` builds its update_mask from the flags given, including an emptied field."""
    job, paths = build_job_update(
        _args("update", "J1", "--title", "New", "--link", "", "--at", "2026-12-01T14:00Z")
    )
    assert job.id == "J1"
    assert paths == ["pin.title", "pin.link", "scheduled_at"]
    assert job.pin.title == "New"
    _, window_only = build_job_update(_args("update", "J1", "--window", "30m"))
    assert window_only == ["delivery_window"]
    with pytest.raises(UsageError, match="nothing to update"):
        build_job_update(_args("update", "J1"))


def test_account_flags() -> None:
    """`accounts create` fills the default write budget; `update` masks only the flags given."""
    created, _ = build_account(
        _args("accounts", "create", "acme", "--access-token", "pina_x", "--min-spacing", "10m"),
        create=True,
    )
    assert created.access_token == "pina_x"
    assert created.pacing.min_spacing.seconds == 600
    assert created.pacing.writes_per_minute == 100
    updated, paths = build_account(
        _args("accounts", "update", "acme", "--pause", "--max-per-day", "0"), create=False
    )
    assert updated.id == "acme"
    assert updated.paused is True
    assert paths == ["pacing.max_per_day", "paused"]
    _, resumed = build_account(_args("accounts", "update", "acme", "--resume"), create=False)
    assert resumed == ["paused"]


def test_account_routing_flags() -> None:
    """`--ad-account-id` and `--api-base` fill their fields and update_mask paths; an empty value
    is sent, to clear the field."""
    created, _ = build_account(
        _args(
            "accounts",
            "create",
            "acme",
            "--access-token",
            "pina_x",
            "--ad-account-id",
            "123",
            "--api-base",
            "http://h/v5",
        ),
        create=True,
    )
    assert (created.ad_account_id, created.api_base) == ("123", "http://h/v5")
    cleared, paths = build_account(
        _args("accounts", "update", "acme", "--api-base", ""), create=False
    )
    assert (cleared.api_base, paths) == ("", ["api_base"])


def test_state_names() -> None:
    """States are accepted in short, dashed, upper-case or full form; unknown names exit 2."""
    assert parse_state("delivered") == job_pb2.Job.STATE_DELIVERED
    assert parse_state("permanently-failed") == job_pb2.Job.STATE_PERMANENTLY_FAILED
    assert parse_state("STATE_QUEUED") == job_pb2.Job.STATE_QUEUED
    args = _args("list", "--state", "delivered,failed", "--state", "queued")
    assert args.state == [
        job_pb2.Job.STATE_DELIVERED,
        job_pb2.Job.STATE_FAILED,
        job_pb2.Job.STATE_QUEUED,
    ]
    with pytest.raises(SystemExit) as caught:
        _args("list", "--state", "done")
    assert caught.value.code == 2


def test_config_check_prints_masked_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`config check` prints the effective configuration as JSON with secrets masked."""
    monkeypatch.setenv("PINSCHED_API_TOKEN", "super-secret-token")
    assert main(["config", "check", "--listen", "127.0.0.1:6000"]) == 0
    out = capsys.readouterr().out
    assert '"listen": "127.0.0.1:6000"' in out
    assert '"api_token": "***"' in out
    assert "super-secret-token" not in out


def test_config_errors_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad configuration value exits 2 with the source named on stderr."""
    monkeypatch.setenv("PINSCHED_LISTEN", "abc")
    assert main(["config", "check"]) == 2
    assert "PINSCHED_LISTEN: expected host:port, got 'abc'" in capsys.readouterr().err


def test_serve_with_bad_config_exits_2_before_starting(capsys: pytest.CaptureFixture[str]) -> None:
    """`serve` with an invalid flag value exits 2 with the flag named, without starting."""
    assert main(["serve", "--listen", "nowhere"]) == 2
    assert "--listen: expected host:port, got 'nowhere'" in capsys.readouterr().err


def test_unknown_arguments_are_refused() -> None:
    """Arguments no command knows are refused with exit 2 (only `sandbox` passes them on)."""
    with pytest.raises(SystemExit) as caught:
        main(["get", "J1", "--bogus"])
    assert caught.value.code == 2


VIDEO_BASE = ["schedule", "--account", "acme", "--board", "123", "--at", "2026-12-01T15:00Z"]


def test_video_url_and_file_flags_build_staged_sources(tmp_path: Path) -> None:
    """`--video-url` becomes a video_url source, `--video-file` a video_asset named by the
    file's sha256, each with its cover."""
    request = build_schedule_request(
        _args(
            *VIDEO_BASE,
            "--video-url",
            "https://e.com/v.mp4",
            "--cover-image-url",
            "https://e.com/c.jpg",
        )
    )
    assert request.pin.media_source.video_url == job_pb2.VideoUrl(
        url="https://e.com/v.mp4", cover_image_url="https://e.com/c.jpg"
    )
    video = tmp_path / "clip.MOV"
    video.write_bytes(b"movie bytes")
    request = build_schedule_request(
        _args(*VIDEO_BASE, "--video-file", str(video), "--cover-key-frame-time", "3")
    )
    assert request.pin.media_source.video_asset == job_pb2.VideoAsset(
        asset_id=__import__("hashlib").sha256(b"movie bytes").hexdigest(),
        cover_image_key_frame_time=3,
    )


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--video-url", "https://e.com/v.mp4"], "one cover"),
        (
            [
                "--video-url",
                "https://e.com/v.mp4",
                "--cover-image-url",
                "https://e.com/c.jpg",
                "--cover-key-frame-time",
                "1",
            ],
            "one cover",
        ),
        (["--video-file", "clip.avi", "--cover-key-frame-time", "1"], ".mp4, .mov or .m4v"),
        (["--video-file", "missing.mp4", "--cover-key-frame-time", "1"], "no such file"),
        (
            [
                "--video-url",
                "https://e.com/v.mp4",
                "--image-url",
                "https://e.com/a.jpg",
                "--cover-key-frame-time",
                "1",
            ],
            "one media source",
        ),
    ],
)
def test_bad_video_flags_are_usage_errors(extra: list[str], needle: str) -> None:
    """A video without exactly one cover, a file of another type or missing, or two media
    sources is a usage error naming the problem."""
    with pytest.raises(UsageError, match=needle):
        build_schedule_request(_args(*VIDEO_BASE, *extra))


def test_bad_key_frame_time_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A non-integer --cover-key-frame-time exits 2 naming the flag, before sending."""
    with pytest.raises(SystemExit) as exc:
        main(
            [
                *VIDEO_BASE,
                "--video-url",
                "https://e.com/v.mp4",
                "--cover-key-frame-time",
                "soon",
                "--target",
                UNUSED_TARGET,
            ]
        )
    assert exc.value.code == 2
    assert "--cover-key-frame-time" in capsys.readouterr().err
