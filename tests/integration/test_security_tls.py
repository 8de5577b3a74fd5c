"""TLS and mutual TLS from certificate files: a CA, a server certificate for 127.0.0.1 and client
certificates are made here with `cryptography`, the daemon is started with them and reached with
`grpc.aio.secure_channel`."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pinsched.app import Daemon
from pinsched.cli.main import main as cli_main
from pinsched.v1 import account_pb2, account_pb2_grpc

Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_cert: Path  # a client certificate signed by another CA
    rogue_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    key: Key,
    issuer: str,
    issuer_key: Key,
    *,
    ca: bool = False,
    server: bool = False,
    client: bool = False,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if client:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(directory: Path, stem: str, cert: x509.Certificate, key: Key) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    keys = {
        name: ec.generate_private_key(ec.SECP256R1())
        for name in ("ca", "server", "client", "rogue_ca", "rogue")
    }
    ca = _cert("pinsched test CA", keys["ca"], "pinsched test CA", keys["ca"], ca=True)
    rogue_ca = _cert("rogue CA", keys["rogue_ca"], "rogue CA", keys["rogue_ca"], ca=True)
    ca_path, _ = _write(d, "ca", ca, keys["ca"])
    server = _write(
        d,
        "server",
        _cert("localhost", keys["server"], "pinsched test CA", keys["ca"], server=True),
        keys["server"],
    )
    client = _write(
        d,
        "client",
        _cert("app", keys["client"], "pinsched test CA", keys["ca"], client=True),
        keys["client"],
    )
    _write(d, "rogue_ca", rogue_ca, keys["rogue_ca"])
    rogue = _write(
        d,
        "rogue",
        _cert("intruder", keys["rogue"], "rogue CA", keys["rogue_ca"], client=True),
        keys["rogue"],
    )
    return Pki(ca_path, *server, *client, *rogue)


@pytest.fixture
async def tls_daemon(make_daemon: Callable[..., Daemon], pki: Pki) -> AsyncIterator[Daemon]:
    daemon = make_daemon(tls_cert_file=str(pki.server_cert), tls_key_file=str(pki.server_key))
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop(grace_s=1.0)


@pytest.fixture
async def mtls_daemon(make_daemon: Callable[..., Daemon], pki: Pki) -> AsyncIterator[Daemon]:
    daemon = make_daemon(
        tls_cert_file=str(pki.server_cert),
        tls_key_file=str(pki.server_key),
        tls_client_ca_file=str(pki.ca),
    )
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop(grace_s=1.0)


def creds(pki: Pki, cert: Path | None = None, key: Path | None = None) -> grpc.ChannelCredentials:
    """Channel credentials trusting the test CA, with an optional client certificate."""
    return grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )


async def create_account(channel: grpc.aio.Channel) -> account_pb2.Account:
    """Create account `acme` over *channel*."""
    return await account_pb2_grpc.AccountServiceStub(channel).CreateAccount(
        account_pb2.CreateAccountRequest(
            account_id="acme", account=account_pb2.Account(access_token="pina_test_access_0001")
        ),
        timeout=5.0,
    )


async def test_tls_serves_the_api(tls_daemon: Daemon, pki: Pki) -> None:
    """Over TLS a client trusting the CA reaches the API; a plain-text client does not."""
    async with grpc.aio.secure_channel(f"127.0.0.1:{tls_daemon.port}", creds(pki)) as channel:
        account = await create_account(channel)
        assert account.id == "acme"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{tls_daemon.port}") as plain:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await create_account(plain)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_requires_a_client_certificate(mtls_daemon: Daemon, pki: Pki) -> None:
    """With a client CA, a client certificate from that CA is accepted; none, or one from
    another CA, is refused at the handshake."""
    target = f"127.0.0.1:{mtls_daemon.port}"
    async with grpc.aio.secure_channel(
        target, creds(pki, pki.client_cert, pki.client_key)
    ) as channel:
        assert (await create_account(channel)).id == "acme"
    for refused in (creds(pki), creds(pki, pki.rogue_cert, pki.rogue_key)):
        async with grpc.aio.secure_channel(target, refused) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5.0
                )
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_health_verb_speaks_mutual_tls(
    mtls_daemon: Daemon, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pinsched health` with the CA and a client certificate reports SERVING (exit 0), and
    without the certificate it exits 1."""
    base = [
        "health",
        "--target",
        f"127.0.0.1:{mtls_daemon.port}",
        "--tls-ca",
        str(pki.ca),
        "--timeout",
        "5",
    ]
    ok = await asyncio.to_thread(
        cli_main,
        [*base, "--tls-client-cert", str(pki.client_cert), "--tls-client-key", str(pki.client_key)],
    )
    assert ok == 0
    assert "SERVING" in capsys.readouterr().out
    assert await asyncio.to_thread(cli_main, base) == 1
    assert "unhealthy" in capsys.readouterr().err
