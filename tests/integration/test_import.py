"""`pinsched import` as a user runs it: the CLI in its own process against a real
daemon, with good, duplicate and bad rows, twice in a row."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.type import dayofweek_pb2  # type: ignore[import-untyped, unused-ignore]

from pinsched.cli.import_rows import build_request
from pinsched.cli.importer import send_chunk
from pinsched.v1 import account_pb2, scheduler_pb2
from pinsched_client import AsyncClient
from tests.conftest import ACCESS, Api

COLUMNS = [
    "account",
    "board",
    "title",
    "image_url",
    "video_url",
    "scheduled_at",
    "local_time",
    "time_zone",
    "next_free_slot",
    "also_boards",
    "board_interval",
    "request_id",
]


async def run_import(api: Api, path: Path, *flags: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pinsched",
        "import",
        str(path),
        "--target",
        f"127.0.0.1:{api.daemon.port}",
        *flags,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def slotted_account(api: Api) -> None:
    sched = account_pb2.PostingSchedule()
    sched.time_zone.id = "Europe/Paris"
    item = sched.slots.add(days=list(range(dayofweek_pb2.MONDAY, dayofweek_pb2.SUNDAY + 1)))
    item.time.hours = 9
    await api.accounts.CreateAccount(
        account_pb2.CreateAccountRequest(
            account_id="acme",
            account=account_pb2.Account(access_token=ACCESS, posting_schedule=sched),
        )
    )


def row(**kw: str) -> dict[str, str]:
    base = {
        "account": "acme",
        "board": "1001",
        "title": "t",
        "image_url": "https://example.com/a.jpg",
    }
    return {**base, **kw}


async def test_import_gives_per_row_results_and_a_second_run_creates_nothing(
    api: Api, tmp_path: Path
) -> None:
    """Good rows are created, a duplicate row is `existing`, bad rows fail naming the field
    without failing their neighbours; the same file again creates nothing; exit 1 on failures."""
    await slotted_account(api)
    soon = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()
    rows = [
        row(title="exact", scheduled_at=soon),  # 1 created
        row(title="slot", next_free_slot="true"),  # 2 created
        row(title="exact", scheduled_at=soon),  # 3 existing
        row(title="x" * 101, scheduled_at=soon),  # 4 pin.title
        row(account="ghost", scheduled_at=soon),  # 5 account
        row(video_url="https://example.com/v.mp4", scheduled_at=soon),  # 6 video_url
        row(scheduled_at=soon, next_free_slot="true"),  # 7 two times
        row(title="mine", scheduled_at=soon, request_id="r-8"),  # 8 created
        row(
            title="group", scheduled_at=soon, also_boards="1002;1003", board_interval="7d"
        ),  # 9 created
        row(title="other", scheduled_at=soon, request_id="r-8"),  # 10 request_id
        row(title="local", local_time="2027-01-10T09:30", time_zone="Europe/Paris"),  # 11
        row(title="bad zone", local_time="2027-01-10T09:30", time_zone="Mars/Base"),  # 12
        row(
            title="video", image_url="", video_url="https://example.com/v.mp4", scheduled_at=soon
        ),  # 13 created
    ]
    path = tmp_path / "pins.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    expected_failed = {
        4: "pin.title:",
        5: "account:",
        6: "video_url: give image_url or",
        7: "scheduled_at: give exactly one",
        10: "request_id:",
        12: "local_time.time_zone:",
    }
    outcomes = []
    for _ in range(2):
        code, out, err = await run_import(api, path, "--json")
        assert code == 1, err
        results = {r["row"]: r for r in map(json.loads, out.splitlines())}
        assert sorted(results) == list(range(1, 14))
        for n, prefix in expected_failed.items():
            assert results[n]["status"] == "failed"
            assert results[n]["error"].startswith(prefix), results[n]
        outcomes.append({n: r["status"] for n, r in results.items() if n not in expected_failed})
        assert "13 rows:" in err
        assert results[3]["job_id"] == results[1]["job_id"]
    assert outcomes[0] == {
        1: "created",
        2: "created",
        3: "existing",
        8: "created",
        9: "created",
        11: "created",
        13: "created",
    }
    assert outcomes[1] == dict.fromkeys(outcomes[0], "existing")
    listed = await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest(account_id="acme"))
    assert len(listed.jobs) == 8  # 1, 2, 8, 11, 13 and the three boards of 9
    (video,) = [j for j in listed.jobs if j.pin.title == "video"]
    assert video.pin.media_source.video_url.url == "https://example.com/v.mp4"


async def test_import_json_lines_and_table_output(api: Api, tmp_path: Path) -> None:
    """JSON Lines take lists and seconds; the table lists every row; all good rows exit 0."""
    await slotted_account(api)
    at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    lines = [
        json.dumps(row(title="a", scheduled_at=at)),
        "",
        json.dumps(
            {
                **row(title="b"),
                "next_free_slot": True,
                "also_boards": [1002],
                "board_interval": 86400,
            }
        ),
    ]
    path = tmp_path / "pins.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, out, err = await run_import(api, path)
    assert code == 0, err
    table = out.splitlines()
    assert table[0].split() == ["row", "job", "planned_at", "result"]
    assert [line.split()[0] for line in table[1:]] == ["1", "2"]
    assert all(line.endswith("created") for line in table[1:])


async def test_import_refuses_unknown_columns_before_sending(api: Api, tmp_path: Path) -> None:
    """A CSV header with an unknown column exits 2 naming it; no job is created."""
    await slotted_account(api)
    path = tmp_path / "pins.csv"
    path.write_text("account,board,colour\nacme,1001,red\n")
    code, _, err = await run_import(api, path)
    assert code == 2
    assert "colour" in err
    code, _, err = await run_import(api, tmp_path / "missing.csv")
    assert code == 2
    assert "missing.csv" in err
    listed = await api.jobs.ListJobs(scheduler_pb2.ListJobsRequest(account_id="acme"))
    assert not listed.jobs


async def test_a_chunk_error_naming_no_row_is_split_until_the_row_is_alone(api: Api) -> None:
    """send_chunk: rows of an unknown account (an error that names no row) fail alone by
    bisection; every other row of the chunk is created."""
    await slotted_account(api)
    at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    items = [
        (
            n,
            build_request(
                row(title=f"r{n}", scheduled_at=at, account="ghost" if n in (3, 6) else "acme")
            ),
        )
        for n in range(1, 9)
    ]
    async with AsyncClient(f"127.0.0.1:{api.daemon.port}") as client:
        got = await send_chunk(client, items)
    assert {n: r.status for n, r in got.items()} == {
        n: "failed" if n in (3, 6) else "created" for n in range(1, 9)
    }
    assert got[3].error.startswith("account: ")
