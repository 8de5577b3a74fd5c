"""The HTTP door serves TLS from the gRPC server's files: HTTPS with the server certificate, and
with a client CA, only callers presenting a certificate of that CA get through."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import aiohttp
import pytest

from pinsched.app import Daemon
from tests.integration.test_security_tls import Pki, pki  # noqa: F401  (the fixture)


def _client_ctx(pki: Pki, *, cert: bool, rogue: bool = False) -> ssl.SSLContext:  # noqa: F811
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if cert:
        pair = (pki.rogue_cert, pki.rogue_key) if rogue else (pki.client_cert, pki.client_key)
        ctx.load_cert_chain(str(pair[0]), str(pair[1]))
    return ctx


async def _status(port: int, ctx: ssl.SSLContext | None, scheme: str = "https") -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{scheme}://127.0.0.1:{port}/v1/accounts", ssl=ctx if ctx else False) as resp,
    ):
        await resp.read()
        return resp.status


async def test_https_with_the_server_certificate(
    make_daemon: Callable[..., Daemon],
    pki: Pki,  # noqa: F811
) -> None:
    """With a certificate and key, the HTTP door answers HTTPS verified against the CA, and
    plain HTTP no longer works."""
    daemon = make_daemon(tls_cert_file=str(pki.server_cert), tls_key_file=str(pki.server_key))
    await daemon.start()
    try:
        assert await _status(daemon.http_port, _client_ctx(pki, cert=False)) == 200
        with pytest.raises(aiohttp.ClientError):
            await _status(daemon.http_port, None, scheme="http")
    finally:
        await daemon.stop(grace_s=1.0)


async def test_mutual_tls(make_daemon: Callable[..., Daemon], pki: Pki) -> None:  # noqa: F811
    """With a client CA, a caller without a certificate or with one of another CA is refused at
    the handshake; one with a certificate of the CA gets its answer."""
    daemon = make_daemon(
        tls_cert_file=str(pki.server_cert),
        tls_key_file=str(pki.server_key),
        tls_client_ca_file=str(pki.ca),
    )
    await daemon.start()
    try:
        assert await _status(daemon.http_port, _client_ctx(pki, cert=True)) == 200
        with pytest.raises(aiohttp.ClientError):
            await _status(daemon.http_port, _client_ctx(pki, cert=False))
        with pytest.raises(aiohttp.ClientError):
            await _status(daemon.http_port, _client_ctx(pki, cert=True, rogue=True))
    finally:
        await daemon.stop(grace_s=1.0)
