"""The plumbing under `AsyncClient`: the gRPC channel (created on first use, inside the running
event loop; TLS when asked), the bearer-token metadata, per-call deadlines and the retry loop
(exponential backoff with jitter on UNAVAILABLE and DEADLINE_EXCEEDED, for the calls that may be
repeated). `check_api_token` refuses a token that cannot be sent as an HTTP/2 header value."""

from __future__ import annotations

import asyncio
import os
import random
from types import TracebackType
from typing import Final, Self, TypeVar

import grpc
from google.protobuf.message import Message

from pinsched.v1 import account_pb2_grpc, scheduler_pb2_grpc

DEFAULT_TARGET: Final = "127.0.0.1:50051"
TARGET_ENV: Final = "PINSCHED_TARGET"
TOKEN_ENV: Final = "PINSCHED_API_TOKEN"
RETRYABLE_CODES: Final = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


def check_api_token(token: str, *, name: str = "api_token") -> str:
    """Return *token* if it can travel as `authorization: Bearer <token>`, else `ValueError`.

    A header value is visible ASCII (and spaces); anything else would fail inside gRPC with an
    opaque "Illegal header value". The message names *name* and never shows the token.
    """
    for index, char in enumerate(token):
        if not (char == " " or "!" <= char <= "~"):
            what = "a non-ASCII character" if ord(char) > 127 else "a control character"
            raise ValueError(
                f"{name}: {what} at position {index + 1}; an API token is printable ASCII "
                "(is it still a placeholder?)"
            )
    if token != token.strip():
        raise ValueError(f"{name}: leading or trailing spaces; remove them")
    return token


def backoff_s(attempt: int, *, base_s: float = 0.1, cap_s: float = 5.0) -> float:
    """Delay before retry number *attempt* (1-based): exponential, capped, full jitter."""
    return random.uniform(0.5, 1.0) * min(cap_s, base_s * 2.0 ** (attempt - 1))


class Channel:
    """The channel and call plumbing of `AsyncClient` (its base)."""

    def __init__(
        self,
        target: str | None = None,
        *,
        api_token: str | None = None,
        tls_root_cert: bytes | None = None,
        tls: bool = False,
        tls_client_cert: bytes | None = None,
        tls_client_key: bytes | None = None,
        timeout_s: float = 10.0,
        retries: int = 3,
    ) -> None:
        """Point at *target* (default `PINSCHED_TARGET`, else 127.0.0.1:50051) with *api_token*
        (default `PINSCHED_API_TOKEN`); TLS is on when `tls` or any certificate is given.

        Raises `ValueError` for a token that cannot be sent as a header value.
        """
        self.target = target or os.environ.get(TARGET_ENV) or DEFAULT_TARGET
        if api_token is None:
            api_token = os.environ.get(TOKEN_ENV) or None
            if api_token is not None:
                check_api_token(api_token, name=TOKEN_ENV)
        elif api_token:
            check_api_token(api_token)
        self.timeout_s = timeout_s
        self.retries = retries
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {api_token}"),) if api_token else ()
        )
        self._credentials: grpc.ChannelCredentials | None = None
        if tls or tls_root_cert is not None or tls_client_cert is not None:
            self._credentials = grpc.ssl_channel_credentials(
                root_certificates=tls_root_cert,
                private_key=tls_client_key,
                certificate_chain=tls_client_cert,
            )
        self._channel: grpc.aio.Channel | None = None
        self._jobs_stub: scheduler_pb2_grpc.PinSchedulerAsyncStub | None = None
        self._accounts_stub: account_pb2_grpc.AccountServiceAsyncStub | None = None

    async def __aenter__(self) -> Self:
        self._connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled. Safe to call twice."""
        channel, self._channel = self._channel, None
        self._jobs_stub = self._accounts_stub = None
        if channel is not None:
            await channel.close(None)

    # -- plumbing ------------------------------------------------------------------------------

    def _connect(self) -> grpc.aio.Channel:
        if self._channel is None:
            options = [
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ]
            if self._credentials is None:
                self._channel = grpc.aio.insecure_channel(self.target, options=options)
            else:
                self._channel = grpc.aio.secure_channel(
                    self.target, self._credentials, options=options
                )
            self._jobs_stub = scheduler_pb2_grpc.PinSchedulerStub(self._channel)
            self._accounts_stub = account_pb2_grpc.AccountServiceStub(self._channel)
        return self._channel

    @property
    def _jobs(self) -> scheduler_pb2_grpc.PinSchedulerAsyncStub:
        self._connect()
        assert self._jobs_stub is not None
        return self._jobs_stub

    @property
    def _accounts(self) -> account_pb2_grpc.AccountServiceAsyncStub:
        self._connect()
        assert self._accounts_stub is not None
        return self._accounts_stub

    async def _call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        *,
        retry: bool,
    ) -> Resp:
        attempt = 0
        while True:
            try:
                return await method(request, timeout=self.timeout_s, metadata=self._metadata)
            except grpc.aio.AioRpcError as err:
                attempt += 1
                if not retry or attempt > self.retries or err.code() not in RETRYABLE_CODES:
                    raise
            await asyncio.sleep(backoff_s(attempt))
