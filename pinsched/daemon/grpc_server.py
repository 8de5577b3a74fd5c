"""The daemon's gRPC server: interceptors (the guard — token, then parsing — before metrics and
every handler), the four API services and WatchJobs' pre-encoded wire, health and reflection;
binding the listen address (TLS, client certificates when configured) and the health-only port
that a probe (Docker HEALTHCHECK) reaches without certificates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from pinsched.api import watch_wire
from pinsched.config import Config
from pinsched.ops.limits import ServerLimits
from pinsched.preflight import ListenError
from pinsched.v1 import (
    account_pb2,
    account_pb2_grpc,
    media_pb2,
    media_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
    webhook_pb2,
    webhook_pb2_grpc,
)

#: Health service that is NOT_SERVING while Pinterest refuses the app's client credentials.
PINTEREST_HEALTH = "pinsched.pinterest"
#: The API services, in the order of the servicers given to `build`.
SERVICES = (
    scheduler_pb2.DESCRIPTOR.services_by_name["PinScheduler"].full_name,
    account_pb2.DESCRIPTOR.services_by_name["AccountService"].full_name,
    webhook_pb2.DESCRIPTOR.services_by_name["WebhookService"].full_name,
    media_pb2.DESCRIPTOR.services_by_name["MediaService"].full_name,
)


def build(
    servicers: Mapping[str, Any], interceptors: list[Any], limits: ServerLimits
) -> tuple[grpc.aio.Server, health_aio.HealthServicer]:
    """A server (not bound, not started) serving *servicers* (by `SERVICES` name), health and
    reflection; and its health servicer."""
    server = grpc.aio.server(
        interceptors=interceptors,
        maximum_concurrent_rpcs=limits.max_concurrent_rpcs,
        options=[("grpc.so_reuseport", 0), *limits.grpc_options()],
    )
    scheduler_pb2_grpc.add_PinSchedulerServicer_to_server(servicers[SERVICES[0]], server)
    watch_wire.register(servicers[SERVICES[0]], server)  # WatchJobs: chunks encoded once
    account_pb2_grpc.add_AccountServiceServicer_to_server(servicers[SERVICES[1]], server)
    webhook_pb2_grpc.add_WebhookServiceServicer_to_server(servicers[SERVICES[2]], server)
    media_pb2_grpc.add_MediaServiceServicer_to_server(servicers[SERVICES[3]], server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (
            *SERVICES,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    return server, health


def bind(server: grpc.aio.Server, cfg: Config) -> int:
    """Bind *server* to `cfg.listen` (TLS when configured); the port, or ListenError."""
    creds = None
    if cfg.tls_cert_file and cfg.tls_key_file:
        with open(cfg.tls_key_file, "rb") as k, open(cfg.tls_cert_file, "rb") as c:
            pair = [(k.read(), c.read())]
        ca = None
        if cfg.tls_client_ca_file:
            with open(cfg.tls_client_ca_file, "rb") as f:
                ca = f.read()
        creds = grpc.ssl_server_credentials(
            pair, root_certificates=ca, require_client_auth=ca is not None
        )
    try:
        if creds is not None:
            port = server.add_secure_port(cfg.listen, creds)
        else:
            port = server.add_insecure_port(cfg.listen)
    except RuntimeError:  # grpc: "Failed to bind to address ..."
        port = 0
    if port == 0:
        raise ListenError(
            f"listen {cfg.listen}: cannot listen: the address is in use or not "
            "an address of this host (--listen / PINSCHED_LISTEN)"
        )
    return port


async def serve_health(
    listen: str, health: health_aio.HealthServicer
) -> tuple[grpc.aio.Server, int]:
    """The health service alone, in plain text on *listen*: a probe needs neither the TLS
    certificates nor a client certificate of the API port. The started server and its port."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen} (health)")
    await server.start()
    return server, port


async def set_pinterest_health(health: health_aio.HealthServicer, *, refused: bool) -> None:
    """`PINTEREST_HEALTH` is NOT_SERVING while Pinterest refuses the app's client credentials."""
    await health.set(
        PINTEREST_HEALTH,
        health_pb2.HealthCheckResponse.NOT_SERVING
        if refused
        else health_pb2.HealthCheckResponse.SERVING,
    )
