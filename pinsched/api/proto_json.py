"""Jobs, accounts and states as proto JSON (proto field names, every field without presence):
the `JsonRenderer` the composition root hands to the webhooks, so that webhook bodies show exactly
what the API shows while `pinsched.webhooks` never imports the API."""

from __future__ import annotations

from typing import Any, Final

from google.protobuf.json_format import MessageToDict

from pinsched.api import account_convert
from pinsched.api import convert as cv
from pinsched.core.accounts import Account
from pinsched.core.jobs import Job, JobState
from pinsched.v1 import job_pb2


def _proto_json(message: Any) -> dict[str, Any]:
    out: dict[str, Any] = MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return out


class ProtoJson:
    """`webhooks.messages.JsonRenderer` over `api.convert`."""

    def job(self, job: Job) -> dict[str, Any]:
        """*job* as GetJob's basic view shows it (no history, no inline image bytes)."""
        return _proto_json(cv.job_to_proto(job))

    def account(self, account: Account) -> dict[str, Any]:
        """*account* as GetAccount shows it (never a token)."""
        return _proto_json(account_convert.account_to_proto(account))

    def state(self, state: JobState | None) -> str:
        """`STATE_...` of *state*; None is `STATE_UNSPECIFIED`."""
        return job_pb2.Job.State.Name(cv.state_to_proto(state))


PROTO_JSON: Final = ProtoJson()
