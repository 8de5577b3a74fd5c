"""The MCP server's pure parts: proto comments from the descriptor set, JSON Schemas derived from
the descriptors, derived request ids, local argument checks, and the CLI verb without the SDK."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from jsonschema import Draft202012Validator

from pinsched.cli import errors as cli_errors
from pinsched.cli.main import main as cli_main
from pinsched.mcp.calls import field_path, input_schema, output_schema, shape_violations
from pinsched.mcp.protodoc import comment, comments
from pinsched.mcp.schema import message_schema
from pinsched.mcp.tools import TOOLS, derived_request_id, scrub
from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2

ROOT = Path(__file__).resolve().parents[2]
BY_NAME = {spec.name: spec for spec in TOOLS}


def described(schema: Any, path: str = "") -> list[str]:
    """Paths of the properties in *schema* that have no description."""
    missing = []
    for name, prop in schema.get("properties", {}).items():
        where = f"{path}.{name}" if path else name
        if not prop.get("description"):
            missing.append(where)
        missing += described(prop.get("items", prop), where)
    return missing


def property_schemas(schema: Any) -> list[Any]:
    """The schemas of all properties (and array items) anywhere below *schema*."""
    found = []
    for prop in schema.get("properties", {}).values():
        found.append(prop)
        found += property_schemas(prop.get("items", prop))
    return found


def test_comments_come_from_the_proto_files() -> None:
    """The packaged descriptor set carries the comments exactly as the .proto files write them."""
    source = (ROOT / "proto/pinsched/v1/job.proto").read_text()
    assert "// Required. The board the pin is created on; digits only (`^\\d+$`)." in source
    assert (
        comment("pinsched.v1.Pin.board_id")
        == "Required. The board the pin is created on; digits only (`^\\d+$`)."
    )
    assert (
        comment("pinsched.v1.PinScheduler.GetJob")
        == "Returns one job with its full transition history; inline image bytes only with `view: "
        "JOB_VIEW_FULL`. Errors: NOT_FOUND; INVALID_ARGUMENT for an unknown view."
    )
    assert (
        comment("pinsched.v1.Job.State.STATE_DELIVERED") == "Published; `pinterest_pin_id` is set."
    )
    assert comment("google.type.DateTime.time_zone").startswith("Time zone.")
    # Every RPC of the two services the tools use is documented in the index.
    rpcs = re.findall(
        r"^\s*rpc (\w+)\(", (ROOT / "proto/pinsched/v1/scheduler.proto").read_text(), re.MULTILINE
    )
    assert rpcs
    assert all(comments().get(f"pinsched.v1.PinScheduler.{rpc}") for rpc in rpcs)


@pytest.mark.parametrize("spec", TOOLS, ids=lambda s: s.name)
def test_every_tool_field_is_described_and_the_schemas_are_valid(spec: Any) -> None:
    """Each tool's input and output schema is valid JSON Schema; every input property is
    described, the output schema is the bare shape (kept small for an agent's context)."""
    Draft202012Validator.check_schema(input_schema(spec))
    Draft202012Validator.check_schema(output_schema(spec))
    assert described(input_schema(spec)) == []
    assert [p for p in property_schemas(output_schema(spec)) if "description" in p] == []


def test_proto_json_mapping_of_the_well_known_types() -> None:
    """Timestamps, durations, enums and 64-bit integers follow the proto3 JSON mapping."""
    job_in = message_schema(job_pb2.Job.DESCRIPTOR, "input")
    job_out = message_schema(job_pb2.Job.DESCRIPTOR, "output")
    assert job_in["properties"]["scheduled_at"]["format"] == "date-time"
    window = Draft202012Validator(job_in["properties"]["delivery_window"])
    assert window.is_valid("7200s")
    assert window.is_valid("1.5s")
    assert not window.is_valid("2h")
    assert "STATE_UNSPECIFIED" in job_out["properties"]["state"]["enum"]
    listing = input_schema(BY_NAME["list_jobs"])["properties"]["states"]["items"]["enum"]
    assert "STATE_UNSPECIFIED" not in listing
    assert "STATE_DELIVERED" in listing
    assert job_out["properties"]["version"]["type"] == ["string", "integer"]
    # Output-only fields are not inputs; input-only and secret fields are not outputs.
    assert "state" not in job_in["properties"]
    assert "version" not in job_in["properties"]
    account_out = message_schema(account_pb2.Account.DESCRIPTOR, "output")
    assert "access_token_expire_time" not in account_out["properties"]
    account_in = message_schema(account_pb2.Account.DESCRIPTOR, "input")
    assert not {"access_token", "refresh_token"} & set(account_in["properties"])


def test_output_schema_accepts_a_fully_populated_job() -> None:
    """The proto JSON of a Job with every kind of field validates against get_job's schema."""
    job = job_pb2.Job(
        id="j1",
        account_id="acme",
        state=job_pb2.Job.STATE_DELIVERED,
        attempts=2,
        version=7,
        pinterest_pin_id="99",
        request_id="r",
        cancel_requested=True,
        pin=job_pb2.Pin(
            board_id="1",
            title="t",
            media_source=job_pb2.MediaSource(
                multiple_image_urls=job_pb2.MultipleImageUrls(
                    items=[job_pb2.CarouselItem(url="https://e/a.jpg")] * 2, index=1
                )
            ),
        ),
        last_error=job_pb2.JobError(category=job_pb2.JobError.CATEGORY_REJECTED, http_status=400),
        history=[job_pb2.Transition(to_state=job_pb2.Job.STATE_PENDING, sequence=3, reason="x")],
        remote_update=job_pb2.RemoteUpdate(
            state=job_pb2.RemoteUpdate.STATE_APPLIED, paths=["pin.title"]
        ),
    )
    job.scheduled_at.FromSeconds(1_800_000_000)
    job.delivery_window.FromSeconds(3600)
    job.local_time.year, job.local_time.time_zone.id = 2027, "Europe/Paris"
    body = MessageToDict(job, preserving_proto_field_name=True)
    Draft202012Validator(output_schema(BY_NAME["get_job"])).validate(body)
    assert body["version"] == "7"  # int64 in proto JSON: a string


def test_input_schema_accepts_the_documented_wire_shapes() -> None:
    """The SchedulePin bodies of the design's wire examples validate against schedule_pin's
    schema; an unknown field does not."""
    pin = {
        "board_id": "123456789",
        "title": "t",
        "description": "d",
        "link": "https://e/x",
        "alt_text": "a",
        "media_source": {"image_url": {"url": "https://e/a.jpg"}},
    }
    validator = Draft202012Validator(input_schema(BY_NAME["schedule_pin"]))
    validator.validate(
        {
            "request_id": "b7c1",
            "account_id": "acme",
            "pin": pin,
            "scheduled_at": "2026-12-01T14:00:00Z",
            "delivery_window": "7200s",
        }
    )
    validator.validate(
        {
            "account_id": "acme",
            "pin": pin,
            "local_time": {
                "year": 2026,
                "month": 3,
                "day": 8,
                "hours": 2,
                "minutes": 30,
                "time_zone": {"id": "America/New_York"},
            },
            "ambiguous_time_policy": "AMBIGUOUS_TIME_POLICY_EARLIER",
        }
    )
    assert not validator.is_valid({"account_id": "acme", "pin": {**pin, "colour": "red"}})


def test_derived_request_id_follows_the_content() -> None:
    """The same request gives the same id whatever request_id it carried; other content, another."""

    def request(title: str, request_id: str = "") -> scheduler_pb2.SchedulePinRequest:
        req = scheduler_pb2.SchedulePinRequest(
            request_id=request_id, account_id="acme", pin=job_pb2.Pin(board_id="1", title=title)
        )
        req.scheduled_at.FromSeconds(1_800_000_000)
        return req

    first = derived_request_id(request("a"))
    assert first == derived_request_id(request("a", request_id="ignored"))
    assert first != derived_request_id(request("b"))
    assert re.fullmatch(r"mcp-[0-9a-f]{32}", first)


def test_shape_violations_use_the_api_field_paths() -> None:
    """Wrong types and unknown fields are named with the API's paths; missing fields are left to
    the daemon."""
    spec = BY_NAME["schedule_pins"]
    found = shape_violations(spec, {"requests": [{}, {"pin": {"title": 5, "x": 1}}]})
    assert sorted(v.field for v in found) == ["requests[1].pin.title", "requests[1].pin.x"]
    assert shape_violations(BY_NAME["schedule_pin"], {}) == []
    assert field_path(["requests", 3, "pin", "title"]) == "requests[3].pin.title"


def test_mcp_verb_without_the_sdk_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pinsched mcp` on an install without the `mcp` package exits 2 naming the extra."""
    for name in ("mcp", "mcp_types"):  # as if not installed: importing them raises ImportError
        monkeypatch.setitem(sys.modules, name, None)
    for name in [n for n in sys.modules if n.startswith("pinsched.mcp.")]:
        monkeypatch.delitem(sys.modules, name)  # imported afresh, without the SDK
    assert cli_main(["mcp"]) == cli_errors.EXIT_USAGE
    assert "pip install 'pinsched[mcp]'" in capsys.readouterr().err


def test_mcp_verb_refuses_bad_connection_flags(capsys: pytest.CaptureFixture[str]) -> None:
    """A client certificate without its key is a usage error, before any server starts."""
    assert cli_main(["mcp", "--tls-client-cert", "cert.pem"]) == cli_errors.EXIT_USAGE
    assert "--tls-client-key" in capsys.readouterr().err


def test_scrub_clears_tokens_from_account_results() -> None:
    """Account results pass through `scrub`, which clears any token field (defence in depth:
    the API never sets them)."""
    leaked = account_pb2.ListAccountsResponse(
        accounts=[account_pb2.Account(id="a", access_token="pina_x", refresh_token="pinr_x")]
    )
    scrub(leaked)
    assert leaked.accounts[0].access_token == ""
    assert leaked.accounts[0].refresh_token == ""
    one = scrub(account_pb2.Account(id="b", access_token="pina_y"))
    assert isinstance(one, account_pb2.Account)
    assert one.access_token == ""
    assert one.id == "b"
