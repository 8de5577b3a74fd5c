"""The `pinsched` flags of posting slots: schedules, next free slot, board groups, `slots`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

import pytest

from pinsched.cli.main import main
from pinsched.cli.parser import build_parser
from pinsched.cli.requests import (
    UsageError,
    build_account,
    build_job_update,
    build_schedule_request,
)
from tests.conftest import ACCESS, Api

BASE = ["schedule", "--account", "acme", "--board", "123", "--image-url", "https://e.com/a.jpg"]


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_next_free_slot_and_board_group_flags_build_the_request() -> None:
    """--next-free-slot (with or without NOT_BEFORE), --also-board and --board-interval land in
    their fields; --next-free-slot excludes --at."""
    now = build_schedule_request(
        _args(
            *BASE,
            "--next-free-slot",
            "--also-board",
            "456",
            "--also-board",
            "789",
            "--board-interval",
            "7d",
        )
    )
    assert now.WhichOneof("time") == "next_free_slot"
    assert not now.next_free_slot.HasField("not_before")
    assert list(now.also_boards) == ["456", "789"]
    assert now.board_interval.seconds == 7 * 86400
    later = build_schedule_request(_args(*BASE, "--next-free-slot", "2027-01-04T00:00Z"))
    assert later.next_free_slot.not_before.ToDatetime(tzinfo=UTC) == datetime(
        2027, 1, 4, tzinfo=UTC
    )
    with pytest.raises(SystemExit):
        _args(*BASE, "--next-free-slot", "--at", "2027-01-04T00:00Z")
    with pytest.raises(UsageError, match="--next-free-slot"):
        build_schedule_request(_args(*BASE, "--next-free-slot", "tomorrow"))
    _, paths = build_job_update(_args("update", "j1", "--next-free-slot"))
    assert paths == ["next_free_slot"]
    with pytest.raises(UsageError, match="also-board"):
        build_job_update(_args("update", "j1", "--also-board", "1"))


def test_posting_schedule_flags_build_the_account() -> None:
    """--posting-schedule with --schedule-tz and --max-per-slot becomes Account.posting_schedule;
    '' removes it; a bad text or a zone without a schedule is a usage error naming the flag."""
    account, paths = build_account(
        _args(
            "accounts",
            "update",
            "acme",
            "--posting-schedule",
            "Mon-Fri 09:00,18:00; Sat 10:30",
            "--schedule-tz",
            "Europe/Paris",
            "--max-per-slot",
            "2",
        ),
        create=False,
    )
    s = account.posting_schedule
    assert paths == ["posting_schedule"]
    assert (s.time_zone.id, s.max_per_slot, len(s.slots)) == ("Europe/Paris", 2, 3)
    assert (list(s.slots[2].days), s.slots[2].time.hours, s.slots[2].time.minutes) == ([6], 10, 30)
    cleared, paths = build_account(
        _args("accounts", "update", "acme", "--posting-schedule", ""), create=False
    )
    assert paths == ["posting_schedule"]
    assert cleared.HasField("posting_schedule")
    assert not cleared.posting_schedule.slots
    with pytest.raises(UsageError, match="--posting-schedule"):
        build_account(
            _args(
                "accounts",
                "create",
                "a",
                "--access-token",
                "x",
                "--posting-schedule",
                "Funday 09:00",
            ),
            create=True,
        )
    with pytest.raises(UsageError, match="--schedule-tz"):
        build_account(_args("accounts", "update", "a", "--schedule-tz", "UTC"), create=False)


def test_a_bad_posting_schedule_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """`accounts create --posting-schedule` with a bad day exits 2 before calling the daemon."""
    code = main(
        [
            "accounts",
            "create",
            "a",
            "--access-token",
            "x",
            "--posting-schedule",
            "Mon 9:00; Xyz 10:00",
            "--target",
            "127.0.0.1:1",
        ]
    )
    assert code == 2
    assert "'xyz' is not a day" in capsys.readouterr().err


async def _cli(api: Api, *argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pinsched",
        *argv,
        "--target",
        f"127.0.0.1:{api.daemon.port}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_schedule_slots_and_preview_from_the_command_line(api: Api) -> None:
    """An account created with --posting-schedule lists its free slots with `pinsched slots`,
    previews and schedules a pin into the first one."""
    code, _, err = await _cli(
        api,
        "accounts",
        "create",
        "acme",
        "--access-token",
        ACCESS,
        "--posting-schedule",
        "Mon-Sun 09:00",
        "--schedule-tz",
        "Asia/Tokyo",
    )
    assert code == 0, err
    code, out, err = await _cli(api, "slots", "acme", "--count", "3")
    assert code == 0, err
    rows = [line for line in out.splitlines() if "Asia/Tokyo" in line]
    assert len(rows) == 3
    assert all(" 09:00 Asia/Tokyo" in r and " 00:00:00Z" in r for r in rows), out
    code, out, err = await _cli(api, "preview", *BASE[1:], "--board", "1001", "--next-free-slot")
    assert code == 0, err
    assert "slot" in out
    assert rows[0].split()[0] in out  # the first free slot's date
