"""The HTTP routes come from the proto annotations, cover every RPC, and the OpenAPI document
generated from them is valid, current and served as committed."""

from __future__ import annotations

import importlib.util
import json
import tempfile
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from pinsched.http import routes as rt
from pinsched.http.openapi import openapi_document

ROOT = Path(__file__).parents[2]
EXPECTED = {
    "PinScheduler_SchedulePin": ("POST", "/v1/jobs", "*"),
    "PinScheduler_BatchSchedulePins": ("POST", "/v1/jobs:batchSchedule", "*"),
    "PinScheduler_PreviewSchedule": ("POST", "/v1/jobs:preview", "*"),
    "PinScheduler_GetJob": ("GET", "/v1/jobs/{job_id}", ""),
    "PinScheduler_ListJobs": ("GET", "/v1/jobs", ""),
    "PinScheduler_UpdateJob": ("PATCH", "/v1/jobs/{job.id}", "job"),
    "PinScheduler_CancelJob": ("POST", "/v1/jobs/{job_id}:cancel", "*"),
    "PinScheduler_RetryJob": ("POST", "/v1/jobs/{job_id}:retry", "*"),
    "PinScheduler_WatchJobs": ("GET", "/v1/jobs:watch", ""),
    "PinScheduler_ExplainJob": ("GET", "/v1/jobs/{job_id}:explain", ""),
    "PinScheduler_ListFreeSlots": ("GET", "/v1/accounts/{account_id}/freeSlots", ""),
    "AccountService_CreateAccount": ("POST", "/v1/accounts", "*"),
    "AccountService_GetAccount": ("GET", "/v1/accounts/{account_id}", ""),
    "AccountService_ListAccounts": ("GET", "/v1/accounts", ""),
    "AccountService_UpdateAccount": ("PATCH", "/v1/accounts/{account.id}", "account"),
    "AccountService_DeleteAccount": ("DELETE", "/v1/accounts/{account_id}", ""),
    "WebhookService_ListWebhookDeliveries": ("GET", "/v1/webhooks/deliveries", ""),
    "WebhookService_RedeliverWebhooks": ("POST", "/v1/webhooks/deliveries:redeliver", "*"),
}


def test_every_rpc_has_an_http_annotation() -> None:
    """Each RPC of each served service has a `google.api.http` rule (a new RPC without one fails
    here), and the table is the documented one."""
    methods = {
        f"{s.name}_{m.name}"
        for f in rt.FILES
        for s in f.services_by_name.values()
        for m in s.methods
    }
    routes = {r.operation_id: (r.verb, r.template, r.body) for r in rt.load_routes()}
    assert set(routes) == methods
    assert routes == EXPECTED


@pytest.mark.parametrize(
    ("verb", "path", "op", "variables"),
    [
        ("GET", "/v1/jobs/01ABC", "PinScheduler_GetJob", {"job_id": "01ABC"}),
        ("POST", "/v1/jobs/01ABC:cancel", "PinScheduler_CancelJob", {"job_id": "01ABC"}),
        ("GET", "/v1/jobs:watch", "PinScheduler_WatchJobs", {}),
        ("PATCH", "/v1/accounts/acme", "AccountService_UpdateAccount", {"account.id": "acme"}),
    ],
)
def test_matching(verb: str, path: str, op: str, variables: dict[str, str]) -> None:
    """Paths with `:verb` suffixes and variables resolve to their RPC and bind the variables."""
    route, got, _ = rt.match(rt.load_routes(), verb, path)
    assert route is not None
    assert route.operation_id == op
    assert got == variables


def test_wrong_method_lists_the_allowed_ones() -> None:
    """A known path with another method yields no route and the methods it answers."""
    route, _, allowed = rt.match(rt.load_routes(), "PUT", "/v1/accounts/acme")
    assert route is None
    assert sorted(allowed) == ["DELETE", "GET", "PATCH"]


def test_openapi_document_is_valid_and_packaged() -> None:
    """docs/openapi.json passes openapi-spec-validator (OpenAPI 3.1), names operations
    `{Service}_{Method}`, declares bearer auth, and is the document the daemon serves."""
    doc = json.loads((ROOT / "docs" / "openapi.json").read_text())
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    ops = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    assert set(EXPECTED) <= ops
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert json.loads(openapi_document()) == doc
    job = doc["components"]["schemas"]["pinsched.v1.Job"]
    assert "version" in job["properties"]
    assert job["description"].startswith("A scheduled pin")


def test_openapi_document_is_current() -> None:
    """Regenerating the document from proto/ gives exactly the committed file."""
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "scripts" / "gen_proto.py")
    assert spec is not None
    assert spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = gen.openapi_text(gen.generate(Path(tmp)))
    assert fresh == (ROOT / "docs" / "openapi.json").read_text()
