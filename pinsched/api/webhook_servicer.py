"""gRPC `pinsched.v1.WebhookService`: list the webhook outbox, re-send dead deliveries.

Endpoints are shown masked (`pinsched.ops.masking.mask_url`: no password, no query token) and may
be named either way in a filter. Thin: validates and converts here, decides in
`pinsched.webhooks.sender.WebhookSender.redeliver`, reads with `WebhookSender.deliveries` (no
store here). Errors map through `pinsched.api.status`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import grpc

from pinsched.api import convert as cv
from pinsched.api.pagination import page_token, read_page_id
from pinsched.api.status import unary
from pinsched.core import errors
from pinsched.ops.masking import mask_url, scrub
from pinsched.v1 import webhook_pb2, webhook_pb2_grpc
from pinsched.webhooks.sender import WebhookSender

if TYPE_CHECKING:
    from pinsched.store import Delivery

Ctx = grpc.aio.ServicerContext[Any, Any]
D = webhook_pb2.WebhookDelivery
STATES: Final = {D.STATE_PENDING: "PENDING", D.STATE_DELIVERED: "DELIVERED", D.STATE_DEAD: "DEAD"}
STATE_VALUES: Final = {name: value for value, name in STATES.items()}
MAX_PAGE: Final = 1000


def delivery_to_proto(d: Delivery, *, include_payload: bool = False) -> webhook_pb2.WebhookDelivery:
    """One outbox row on the wire."""
    msg = webhook_pb2.WebhookDelivery(
        id=d.id,
        endpoint=mask_url(d.endpoint),
        message_id=d.message_id,
        event_type=d.event_type,
        event_sequence=d.event_seq,
        order_key=d.order_key,
        state=STATE_VALUES.get(d.state, D.STATE_UNSPECIFIED),
        attempts=d.attempts,
        last_status=d.last_status or 0,
        last_error=scrub(d.last_error or "", d.endpoint),
        create_time=cv.timestamp_to_proto(d.created_at),
        update_time=cv.timestamp_to_proto(d.updated_at),
        payload=d.payload if include_payload else "",
    )
    if d.state == "PENDING":
        msg.next_attempt_time.CopyFrom(cv.timestamp_to_proto(d.next_attempt_at))
    return msg


class WebhookServicer(webhook_pb2_grpc.WebhookServiceServicer):
    def __init__(self, sender: WebhookSender) -> None:
        self.sender = sender

    @unary
    async def ListWebhookDeliveries(
        self,
        request: webhook_pb2.ListWebhookDeliveriesRequest,
        context: Ctx,
    ) -> webhook_pb2.ListWebhookDeliveriesResponse:
        violations = []
        if not 0 <= request.page_size <= MAX_PAGE:
            violations.append(
                errors.FieldViolation(
                    "page_size", f"must be between 1 and {MAX_PAGE}, got {request.page_size}"
                )
            )
        if request.state != D.STATE_UNSPECIFIED and request.state not in STATES:
            violations.append(
                errors.FieldViolation("state", f"not a delivery state: {request.state}")
            )
        if violations:
            raise errors.InvalidArgument(violations)
        size = request.page_size or 100
        state = STATES.get(request.state, "")
        endpoint = self.sender.endpoint_name(request.endpoint)  # its URL, or the masked URL
        scope = f"{endpoint}\n{state}"
        rows = await self.sender.deliveries(
            endpoint=endpoint,
            state=state,
            after_id=read_page_id(request.page_token, "wh", scope),
            limit=size + 1,
        )
        page, more = rows[:size], len(rows) > size
        return webhook_pb2.ListWebhookDeliveriesResponse(
            deliveries=[
                delivery_to_proto(d, include_payload=request.include_payload) for d in page
            ],
            next_page_token=page_token("wh", str(page[-1].id), scope) if more else "",
        )

    @unary
    async def RedeliverWebhooks(
        self,
        request: webhook_pb2.RedeliverWebhooksRequest,
        context: Ctx,
    ) -> webhook_pb2.RedeliverWebhooksResponse:
        count = await self.sender.redeliver(
            delivery_ids=list(request.delivery_ids), endpoint=request.endpoint
        )
        return webhook_pb2.RedeliverWebhooksResponse(redelivered_count=count)
