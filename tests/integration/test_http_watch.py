"""`GET /v1/jobs:watch` as Server-Sent Events against a real daemon: the message format, resume
with `Last-Event-ID` after a disconnect (no gap, no duplicate), a slow reader caught up from the
durable log, heartbeats, errors before the stream starts, and the end of the stream at shutdown."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from pinsched.app import Daemon
from tests.integration.test_http_api import Http, create_account, n8n_pin


@dataclass
class Message:
    id: str
    event: str
    data: Any
    comment: str = ""


async def messages(resp: aiohttp.ClientResponse) -> AsyncIterator[Message]:
    """Parse an SSE stream (comments come out as messages with only `comment` set)."""
    fields: dict[str, str] = {}
    while True:
        raw = await resp.content.readline()
        if not raw:
            return
        line = raw.decode().rstrip("\n")
        if line.startswith(":"):
            yield Message("", "", None, comment=line[1:].strip())
        elif line:
            key, _, value = line.partition(": ")
            fields[key] = value
        elif fields:
            yield Message(
                fields.get("id", ""), fields.get("event", "message"), json.loads(fields["data"])
            )
            fields = {}


async def take(resp: aiohttp.ClientResponse, n: int) -> list[Message]:
    out: list[Message] = []
    async for m in messages(resp):
        if not m.comment:
            out.append(m)
            if len(out) == n:
                break
    return out


@pytest.fixture
async def http(make_daemon: Callable[..., Daemon]) -> AsyncIterator[Http]:
    daemon = make_daemon()
    await daemon.start()
    async with aiohttp.ClientSession() as session:
        try:
            yield Http(f"http://127.0.0.1:{daemon.http_port}", session, daemon)
        finally:
            await daemon.stop(grace_s=1.0)


async def schedule(http: Http, title: str) -> str:
    status, job, _ = await http.call("POST", "/v1/jobs", n8n_pin(title))
    assert status == 200, job
    return str(job["id"])


async def test_message_format(http: Http) -> None:
    """Each JobEvent is one message: `id` = its sequence, `event` = the webhook type, `data` = the
    JobEvent JSON with proto field names on one line."""
    await create_account(http)
    job_id = await schedule(http, "one")
    async with http.session.get(
        f"{http.base}/v1/jobs:watch", params={"job_ids": job_id, "since_sequence": "0"}
    ) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/event-stream"
        (created,) = await take(resp, 1)
        await http.call("POST", f"/v1/jobs/{job_id}:cancel")
        (cancelled,) = await take(resp, 1)
    assert created.event == "job.scheduled"
    assert created.data["to_state"] == "STATE_PENDING"
    assert created.id == created.data["sequence"]
    assert created.data["job_id"] == job_id
    assert created.data["job"]["pin"]["title"] == "one"
    assert cancelled.event == "job.cancelled"
    assert int(cancelled.id) > int(created.id)


async def test_resume_with_last_event_id_has_no_gap_and_no_duplicate(http: Http) -> None:
    """A reader that disconnects mid-stream and reconnects with `Last-Event-ID` gets every event
    after the last one it saw exactly once, including those committed while it was away."""
    await create_account(http)
    first = [await schedule(http, f"a{i}") for i in range(4)]
    url = f"{http.base}/v1/jobs:watch"
    async with http.session.get(url, params={"account_id": "acme", "since_sequence": "0"}) as resp:
        seen = await take(resp, 2)  # then drop the connection mid-stream
    later = [await schedule(http, f"b{i}") for i in range(2)]
    await http.call("POST", f"/v1/jobs/{later[-1]}:cancel")
    async with http.session.get(
        url, params={"account_id": "acme"}, headers={"Last-Event-ID": seen[-1].id}
    ) as resp:
        resumed = await take(resp, 2 + 2 + 1)
    async with http.session.get(url, params={"account_id": "acme", "since_sequence": "0"}) as resp:
        everything = await take(resp, 4 + 2 + 1)
    got = [m.id for m in seen + resumed]
    assert got == [m.id for m in everything]
    assert len(set(got)) == len(got)
    assert [m.data["job_id"] for m in everything[:6]] == first + later
    assert resumed[-1].event == "job.cancelled"


async def test_slow_reader_catches_up_from_the_log(http: Http) -> None:
    """A watcher whose bounded buffer overflows (20 events at once into a buffer of 2) is not
    waited for: it is caught up from the durable log and still sees each event exactly once."""
    await create_account(http)
    http.daemon.bus._buffer = 2  # every new subscription gets a 2-event buffer
    async with http.session.get(
        f"{http.base}/v1/jobs:watch", params={"account_id": "acme"}
    ) as resp:
        await anext(messages(resp))  # the stream is open: the subscription exists
        status, out, _ = await http.call(
            "POST", "/v1/jobs:batchSchedule", {"requests": [n8n_pin(f"p{i}") for i in range(20)]}
        )
        assert status == 200
        got = await take(resp, 20)
    assert [m.data["job_id"] for m in got] == [j["id"] for j in out["jobs"]]
    assert len({m.id for m in got}) == 20


async def test_heartbeat_comments_keep_an_idle_stream_alive(
    make_daemon: Callable[..., Daemon], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idle stream gets a comment line every heartbeat interval."""
    monkeypatch.setattr("pinsched.http.server.HEARTBEAT_S", 0.05)
    daemon = make_daemon()
    await daemon.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{daemon.http_port}/v1/jobs:watch") as resp,
        ):
            comments = []
            async for m in messages(resp):
                comments.append(m.comment)
                if len(comments) == 3:
                    break
        assert comments == ["watching", "heartbeat", "heartbeat"]
    finally:
        await daemon.stop(grace_s=1.0)


async def test_bad_filters_are_a_400_before_the_stream(http: Http) -> None:
    """A bad state, a negative since_sequence or a bad Last-Event-ID answer a JSON 400 naming it
    instead of an event stream."""
    status, err, _ = await http.call("GET", "/v1/jobs:watch", params={"states": "STATE_NOPE"})
    assert status == 400
    assert err["error"]["details"][0]["field_violations"][0]["field"] == "states[0]"
    status, err, _ = await http.call("GET", "/v1/jobs:watch", params={"since_sequence": "-1"})
    assert status == 400
    assert err["error"]["details"][0]["field_violations"][0]["field"] == "since_sequence"
    status, err, _ = await http.call("GET", "/v1/jobs:watch", headers={"Last-Event-ID": "x"})
    assert status == 400
    assert err["error"]["details"][0]["field_violations"][0]["field"] == "Last-Event-ID"


async def test_shutdown_ends_the_stream_with_an_error_event(
    make_daemon: Callable[..., Daemon],
) -> None:
    """When the daemon stops, an open stream gets an `error` event carrying UNAVAILABLE (so a
    client knows to reconnect with its last id), then ends."""
    daemon = make_daemon()
    await daemon.start()
    stopped = False
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{daemon.http_port}/v1/jobs:watch") as resp,
        ):
            stream = messages(resp)
            assert (await anext(stream)).comment == "watching"
            await daemon.stop(grace_s=1.0)
            stopped = True
            rest = [m async for m in stream]
        assert [m.event for m in rest] == ["error"]
        assert rest[0].data["error"]["status"] == "UNAVAILABLE"
        assert rest[0].data["error"]["code"] == 503
    finally:
        if not stopped:
            await daemon.stop(grace_s=1.0)
