"""The HTTP/JSON door: a contract test per route with a plain HTTP client over loopback against a
real daemon (real SQLite, real sandbox), happy path and every error class, with the JSON exactly
as an n8n HTTP Request node sends it (snake_case, numbers as strings)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pinsched.app import Daemon
from pinsched.ops.limits import ServerLimits
from tests.conftest import ACCESS, BOARD, REFRESH


@dataclass
class Http:
    base: str
    session: aiohttp.ClientSession
    daemon: Daemon

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Any = None,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        kwargs: dict[str, Any] = {"params": params, "headers": headers}
        if data is not None:
            kwargs["data"] = data
        elif body is not None:
            kwargs["json"] = body
        async with self.session.request(method, self.base + path, **kwargs) as resp:
            text = await resp.text()
            assert resp.content_type == "application/json", text
            return resp.status, json.loads(text), resp


@pytest.fixture
async def http(make_daemon: Callable[..., Daemon]) -> AsyncIterator[Http]:
    daemon = make_daemon()
    await daemon.start()
    async with aiohttp.ClientSession() as session:
        try:
            yield Http(f"http://127.0.0.1:{daemon.http_port}", session, daemon)
        finally:
            await daemon.stop(grace_s=1.0)


def at(seconds: float = 3600) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def n8n_pin(title: str = "Hello", request_id: str = "") -> dict[str, Any]:
    """A SchedulePin body as an n8n HTTP Request node sends it."""
    body: dict[str, Any] = {
        "account_id": "acme",
        "scheduled_at": at(),
        "pin": {
            "board_id": BOARD,
            "title": title,
            "media_source": {"image_url": {"url": "https://example.com/a.jpg"}},
        },
    }
    if request_id:
        body["request_id"] = request_id
    return body


async def create_account(http: Http, account_id: str = "acme") -> dict[str, Any]:
    status, body, _ = await http.call(
        "POST",
        "/v1/accounts",
        {
            "account_id": account_id,
            "account": {
                "display_name": account_id,
                "access_token": ACCESS,
                "refresh_token": REFRESH,
                "pacing": {"max_per_hour": "10", "writes_per_minute": "100"},
            },
        },
    )
    assert status == 200, body
    return body


def violations(body: dict[str, Any]) -> list[str]:
    return [
        v["field"]
        for d in body["error"]["details"]
        if d["@type"].endswith("google.rpc.BadRequest")
        for v in d["field_violations"]
    ]


def reason(body: dict[str, Any]) -> str:
    info = [d for d in body["error"]["details"] if d["@type"].endswith("google.rpc.ErrorInfo")]
    return str(info[0]["reason"])


async def test_schedule_get_cancel_with_n8n_json(http: Http) -> None:
    """A pin scheduled with n8n-shaped JSON comes back as a PENDING job with proto field names,
    can be read back by id, and cancelled."""
    acct = await create_account(http)
    assert acct["pacing"]["max_per_hour"] == 10
    assert not acct.get("access_token")
    status, job, _ = await http.call("POST", "/v1/jobs", n8n_pin(request_id="n8n-1"))
    assert status == 200, job
    assert job["state"] == "STATE_PENDING"
    assert job["pin"]["title"] == "Hello"
    assert job["version"] == "1"
    assert job["request_id"] == "n8n-1"
    status, got, _ = await http.call("GET", f"/v1/jobs/{job['id']}")
    assert status == 200
    assert got["id"] == job["id"]
    assert got["history"][0]["to_state"] == "STATE_PENDING"
    status, cancelled, _ = await http.call("POST", f"/v1/jobs/{job['id']}:cancel")
    assert status == 200
    assert cancelled["state"] == "STATE_CANCELLED"


async def test_camel_case_enum_numbers_and_int64_numbers_are_accepted(http: Http) -> None:
    """lowerCamelCase names, enum numbers and an int64 given as a JSON number all parse."""
    await create_account(http)
    body = {
        "accountId": "acme",
        "scheduledAt": at(),
        "deliveryWindow": "60s",
        "ambiguousTimePolicy": 2,
        "pin": {
            "boardId": BOARD,
            "title": "Camel",
            "mediaSource": {"imageUrl": {"url": "https://example.com/a.jpg"}},
        },
    }
    status, job, _ = await http.call("POST", "/v1/jobs", body)
    assert status == 200, job
    status, out, _ = await http.call(
        "POST", f"/v1/jobs/{job['id']}:cancel", {"expected_version": 1}
    )
    assert status == 200
    assert out["state"] == "STATE_CANCELLED"


async def test_unknown_field_is_a_400_naming_it(http: Http) -> None:
    """A typo in a nested field is refused with INVALID_ARGUMENT naming `pin.titel`, not dropped."""
    await create_account(http)
    body = n8n_pin()
    body["pin"]["titel"] = "typo"
    status, err, _ = await http.call("POST", "/v1/jobs", body)
    assert status == 400
    assert err["error"]["status"] == "INVALID_ARGUMENT"
    assert err["error"]["code"] == 400
    assert violations(err) == ["pin.titel"]
    assert reason(err) == "INVALID_ARGUMENT"


async def test_validation_errors_carry_the_grpc_details(http: Http) -> None:
    """A bad pin answers 400 with a google.rpc.BadRequest naming every bad field, as over gRPC."""
    await create_account(http)
    body = n8n_pin()
    body["pin"]["board_id"] = ""
    body["pin"]["title"] = "x" * 500
    status, err, _ = await http.call("POST", "/v1/jobs", body)
    assert status == 400
    assert set(violations(err)) == {"pin.board_id", "pin.title"}


async def test_batch_and_preview(http: Http) -> None:
    """BatchSchedulePins creates every job in order; PreviewSchedule answers the planned time
    and persists nothing; a bad item is named by its index."""
    await create_account(http)
    status, out, _ = await http.call(
        "POST", "/v1/jobs:batchSchedule", {"requests": [n8n_pin("a"), n8n_pin("b")]}
    )
    assert status == 200
    assert [j["pin"]["title"] for j in out["jobs"]] == ["a", "b"]
    status, preview, _ = await http.call("POST", "/v1/jobs:preview", n8n_pin("p"))
    assert status == 200
    assert preview["planned_at"] == preview["scheduled_at"]
    status, listed, _ = await http.call("GET", "/v1/jobs")
    assert status == 200
    assert len(listed["jobs"]) == 2
    bad = n8n_pin("c")
    bad["pin"]["board_id"] = ""
    status, err, _ = await http.call(
        "POST", "/v1/jobs:batchSchedule", {"requests": [n8n_pin("d"), bad]}
    )
    assert status == 400
    assert violations(err) == ["requests[1].pin.board_id"]


async def test_list_jobs_query_parameters(http: Http) -> None:
    """ListJobs takes its filters from the query string (repeated `states`, page size as text,
    an RFC 3339 instant) and pages with `next_page_token`; an unknown parameter is a 400."""
    await create_account(http)
    ids = []
    for i in range(3):
        _, job, _ = await http.call("POST", "/v1/jobs", n8n_pin(f"t{i}"))
        ids.append(job["id"])
    await http.call("POST", f"/v1/jobs/{ids[0]}:cancel")
    status, page, _ = await http.call(
        "GET",
        "/v1/jobs",
        params=[
            ("account_id", "acme"),
            ("states", "STATE_PENDING"),
            ("states", "STATE_QUEUED"),
            ("page_size", "1"),
            ("planned_after", at(-60)),
        ],
    )
    assert status == 200
    assert len(page["jobs"]) == 1
    assert page["next_page_token"]
    status, rest, _ = await http.call(
        "GET",
        "/v1/jobs",
        params=[
            ("account_id", "acme"),
            ("states", "STATE_PENDING"),
            ("states", "STATE_QUEUED"),
            ("page_size", "5"),
            ("planned_after", at(-60)),
            ("pageToken", page["next_page_token"]),
        ],
    )
    assert status == 200
    assert {j["id"] for j in page["jobs"] + rest["jobs"]} == set(ids[1:])
    status, err, _ = await http.call("GET", "/v1/jobs", params={"page_sise": "5"})
    assert status == 400
    assert violations(err) == ["page_sise"]
    status, err, _ = await http.call("GET", "/v1/jobs", params={"states": "STATE_NOPE"})
    assert status == 400
    assert violations(err) == ["states[0]"]
    status, err, _ = await http.call("GET", "/v1/jobs", params={"page_size": "5000"})
    assert status == 400
    assert violations(err) == ["page_size"]


async def test_update_job_patch(http: Http) -> None:
    """PATCH /v1/jobs/{job.id} applies the body to the fields in `update_mask` (snake_case
    paths), checks `expected_version` (409 ABORTED), and refuses unknown paths."""
    await create_account(http)
    _, job, _ = await http.call("POST", "/v1/jobs", n8n_pin())
    path = f"/v1/jobs/{job['id']}"
    status, out, _ = await http.call(
        "PATCH",
        path,
        {"pin": {"title": "New"}},
        params={"update_mask": "pin.title", "expected_version": "1"},
    )
    assert status == 200
    assert out["pin"]["title"] == "New"
    assert out["version"] == "2"
    status, err, _ = await http.call(
        "PATCH",
        path,
        {"pin": {"title": "Late"}},
        params={"update_mask": "pin.title", "expected_version": "1"},
    )
    assert status == 409
    assert err["error"]["status"] == "ABORTED"
    status, out, _ = await http.call(
        "PATCH", path, {"scheduled_at": (later := at(7200))}, params={"update_mask": "scheduled_at"}
    )
    assert status == 200
    assert out["scheduled_at"] == later
    status, err, _ = await http.call(
        "PATCH", path, {"state": "STATE_DELIVERED"}, params={"update_mask": "state"}
    )
    assert status == 400
    assert violations(err) == ["update_mask"]
    status, err, _ = await http.call(
        "PATCH",
        path,
        {"pin": {"title": "x"}},
        params={"update_mask": "pin.title", "job.pin.title": "y"},
    )
    assert status == 400
    assert violations(err) == ["job.pin.title"]


async def test_not_found_already_exists_failed_precondition(http: Http) -> None:
    """Unknown ids answer 404 with the store's reason; a reused request_id with other content
    409 ALREADY_EXISTS; retrying a PENDING job 400 FAILED_PRECONDITION."""
    status, err, _ = await http.call("GET", "/v1/jobs/01JNOPE")
    assert status == 404
    assert err["error"]["status"] == "NOT_FOUND"
    assert reason(err) == "JOB_NOT_FOUND"
    await create_account(http)
    _, job, _ = await http.call("POST", "/v1/jobs", n8n_pin("same", request_id="r-1"))
    status, again, _ = await http.call("POST", "/v1/jobs", n8n_pin("same", request_id="r-1"))
    assert status == 200
    assert again["id"] == job["id"]
    status, err, _ = await http.call("POST", "/v1/jobs", n8n_pin("other", request_id="r-1"))
    assert status == 409
    assert err["error"]["status"] == "ALREADY_EXISTS"
    status, err, _ = await http.call("POST", f"/v1/jobs/{job['id']}:retry")
    assert status == 400
    assert err["error"]["status"] == "FAILED_PRECONDITION"
    status, err, _ = await http.call("POST", "/v1/jobs", n8n_pin() | {"account_id": "ghost"})
    assert status == 404
    assert reason(err) == "ACCOUNT_NOT_FOUND"


async def test_accounts_routes(http: Http) -> None:
    """Accounts: create (409 when taken), get, list, patch with `update_mask`, delete (400
    FAILED_PRECONDITION with active jobs, then `force=true`), and 404 afterwards."""
    await create_account(http)
    status, err, _ = await http.call(
        "POST", "/v1/accounts", {"account_id": "acme", "account": {"access_token": ACCESS}}
    )
    assert status == 409
    assert err["error"]["status"] == "ALREADY_EXISTS"
    status, err, _ = await http.call(
        "POST", "/v1/accounts", {"account_id": "Bad Id!", "account": {}}
    )
    assert status == 400
    assert set(violations(err)) == {"account_id", "account.access_token"}
    status, got, _ = await http.call("GET", "/v1/accounts/acme")
    assert status == 200
    assert got["state"] == "STATE_ACTIVE"
    assert got["has_refresh_token"]
    status, listed, _ = await http.call("GET", "/v1/accounts", params={"page_size": "10"})
    assert status == 200
    assert [a["id"] for a in listed["accounts"]] == ["acme"]
    status, patched, _ = await http.call(
        "PATCH",
        "/v1/accounts/acme",
        {"display_name": "Acme", "paused": True},
        params={"update_mask": "display_name,paused"},
    )
    assert status == 200
    assert patched["display_name"] == "Acme"
    assert patched["state"] == "STATE_PAUSED"
    await http.call("POST", "/v1/jobs", n8n_pin())
    status, err, _ = await http.call("DELETE", "/v1/accounts/acme")
    assert status == 400
    assert err["error"]["status"] == "FAILED_PRECONDITION"
    status, err, _ = await http.call("DELETE", "/v1/accounts/acme", params={"force": "maybe"})
    assert status == 400
    assert violations(err) == ["force"]
    status, empty, _ = await http.call("DELETE", "/v1/accounts/acme", params={"force": "true"})
    assert status == 200
    assert empty == {}
    status, err, _ = await http.call("GET", "/v1/accounts/acme")
    assert status == 404


async def test_free_slots_route(http: Http) -> None:
    """GET /v1/accounts/{id}/freeSlots lists the posting schedule's next slots; a bad count is
    a 400 naming `count`, an account without a schedule a 400 FAILED_PRECONDITION."""
    await create_account(http)
    status, err, _ = await http.call("GET", "/v1/accounts/acme/freeSlots")
    assert (status, err["error"]["status"]) == (400, "FAILED_PRECONDITION")
    status, body, _ = await http.call(
        "PATCH",
        "/v1/accounts/acme",
        {
            "posting_schedule": {
                "time_zone": {"id": "Asia/Tokyo"},
                "slots": [{"days": ["MONDAY", "THURSDAY"], "time": {"hours": 9}}],
            }
        },
        params={"update_mask": "posting_schedule"},
    )
    assert status == 200, body
    status, body, _ = await http.call("GET", "/v1/accounts/acme/freeSlots", params={"count": "2"})
    assert status == 200, body
    assert [s["slot"]["time_zone"] for s in body["slots"]] == ["Asia/Tokyo"] * 2
    assert body["slots"][0]["slot"]["start_time"].endswith("T00:00:00Z")  # 09:00 in Tokyo
    status, err, _ = await http.call("GET", "/v1/accounts/acme/freeSlots", params={"count": "500"})
    assert status == 400
    assert violations(err) == ["count"]


async def test_webhook_routes(http: Http) -> None:
    """The WebhookService over HTTP: list deliveries (empty here) and redeliver's bad input
    named, like over gRPC."""
    status, out, _ = await http.call(
        "GET", "/v1/webhooks/deliveries", params={"state": "STATE_DEAD", "include_payload": "true"}
    )
    assert status == 200
    assert out == {"deliveries": [], "next_page_token": ""}
    status, err, _ = await http.call("POST", "/v1/webhooks/deliveries:redeliver", {})
    assert status == 400
    assert err["error"]["status"] == "INVALID_ARGUMENT"
    status, err, _ = await http.call(
        "POST", "/v1/webhooks/deliveries:redeliver", {"delivery_ids": ["999"]}
    )
    assert status == 404


async def test_door_refusals_are_json(http: Http, monkeypatch: pytest.MonkeyPatch) -> None:
    """Malformed JSON (400), a wrong content type (415), a body that is not an object (400), an
    unknown route (404), a wrong method (405 with Allow) all answer Google's JSON error shape."""
    status, err, _ = await http.call(
        "POST", "/v1/jobs", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert violations(err) == ["body"]
    status, err, _ = await http.call(
        "POST",
        "/v1/jobs",
        data=b"a=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 415
    assert err["error"]["status"] == "INVALID_ARGUMENT"
    status, err, _ = await http.call("POST", "/v1/jobs", [1, 2])
    assert status == 400
    assert violations(err) == ["body"]
    status, err, _ = await http.call("GET", "/v1/nothing")
    assert status == 404
    assert reason(err) == "NO_ROUTE"
    status, err, _ = await http.call("GET", "/elsewhere")
    assert status == 404
    assert err["error"]["status"] == "NOT_FOUND"
    status, err, resp = await http.call("DELETE", "/v1/jobs")
    assert status == 405
    assert set(resp.headers["Allow"].split(", ")) == {"GET", "POST"}
    status, err, _ = await http.call("GET", "/v1/jobs/x", {"a": 1})
    assert status == 400
    assert violations(err) == ["body"]


async def test_body_over_the_limit_is_413(make_daemon: Callable[..., Daemon]) -> None:
    """A body over the receive limit answers 413 in the JSON error shape."""
    daemon = make_daemon(limits=ServerLimits(http_max_body_bytes=1024))
    await daemon.start()
    try:
        async with aiohttp.ClientSession() as session:
            http = Http(f"http://127.0.0.1:{daemon.http_port}", session, daemon)
            status, err, _ = await http.call("POST", "/v1/jobs", n8n_pin("x" * 2000))
            assert status == 413
            assert err["error"]["status"] == "RESOURCE_EXHAUSTED"
    finally:
        await daemon.stop(grace_s=1.0)


async def test_health_ready_and_openapi(http: Http) -> None:
    """/healthz and /readyz answer 200 on a running daemon; /openapi.json is the committed
    document."""
    status, body, _ = await http.call("GET", "/healthz")
    assert status == 200
    assert body["status"] == "SERVING"
    status, body, _ = await http.call("GET", "/readyz")
    assert status == 200
    assert body["status"] == "READY"
    status, doc, _ = await http.call("GET", "/openapi.json")
    committed = json.loads((Path(__file__).parents[2] / "docs" / "openapi.json").read_text())
    assert status == 200
    assert doc == committed


async def test_readyz_is_503_once_stopping(http: Http) -> None:
    """/readyz answers 503 NOT_READY when the scheduler no longer runs."""
    for task in http.daemon._tasks:
        task.cancel()
    status, body, _ = await http.call("GET", "/readyz")
    assert status == 503
    assert body["reason"] == "the scheduler is not running"


async def test_bearer_token_is_required_except_health(make_daemon: Callable[..., Daemon]) -> None:
    """With an API token the door answers 401 (JSON, WWW-Authenticate) without or with a wrong
    token, serves the right one, and leaves /healthz open."""
    daemon = make_daemon(api_token="s3cret-token")
    await daemon.start()
    try:
        async with aiohttp.ClientSession() as session:
            http = Http(f"http://127.0.0.1:{daemon.http_port}", session, daemon)
            status, err, resp = await http.call("GET", "/v1/accounts")
            assert status == 401
            assert err["error"]["status"] == "UNAUTHENTICATED"
            assert resp.headers["WWW-Authenticate"] == "Bearer"
            status, _, _ = await http.call(
                "GET", "/v1/accounts", headers={"Authorization": "Bearer wrong"}
            )
            assert status == 401
            status, _, _ = await http.call(
                "GET", "/v1/accounts", headers={"Authorization": "Bearer s3cret-token"}
            )
            assert status == 200
            status, _, _ = await http.call("GET", "/healthz")
            assert status == 200
    finally:
        await daemon.stop(grace_s=1.0)


async def test_http_listen_off(make_daemon: Callable[..., Daemon]) -> None:
    """`http_listen` None (`off`) starts no HTTP listener."""
    daemon = make_daemon(http_listen=None)
    await daemon.start()
    try:
        assert daemon.http is None
        assert daemon.http_port == 0
    finally:
        await daemon.stop(grace_s=1.0)


async def test_extensions_mount_extra_routes(make_daemon: Callable[..., Daemon]) -> None:
    """A part added to `Daemon.http_extensions` serves its own routes on the same listener,
    behind the same token check."""
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": "mcp"})

    def mount(app: web.Application) -> None:
        sub = web.Application()
        sub.router.add_get("/ping", hello)
        app.add_subapp("/mcp", sub)

    daemon = make_daemon(api_token="tok")
    daemon.http_extensions.append(mount)
    await daemon.start()
    try:
        async with aiohttp.ClientSession() as session:
            http = Http(f"http://127.0.0.1:{daemon.http_port}", session, daemon)
            status, _, _ = await http.call("GET", "/mcp/ping")
            assert status == 401
            status, body, _ = await http.call(
                "GET", "/mcp/ping", headers={"Authorization": "Bearer tok"}
            )
            assert status == 200
            assert body == {"hello": "mcp"}
    finally:
        await daemon.stop(grace_s=1.0)


@pytest.mark.sqlite_only  # reads the SQLite file itself
async def test_http_port_in_use_is_a_clear_config_error(make_daemon: Callable[..., Daemon]) -> None:
    """When the HTTP address is taken, start fails with a ConfigError naming http_listen and
    leaves nothing running."""
    from pinsched.config import ConfigError

    first = make_daemon()
    await first.start()
    try:
        second = make_daemon(
            db_path=str(Path(first.config.db_path).with_name("other.db")),
            http_listen=f"127.0.0.1:{first.http_port}",
        )
        with pytest.raises(ConfigError, match=r"http_listen: cannot listen on 127\.0\.0\.1:"):
            await second.start()
    finally:
        await first.stop(grace_s=1.0)
