"""The local commands of the command line: `serve`, `config check`, `sandbox`, `health`, `mcp`,
`demo`, and the event loop policy (`run`).

uvloop is installed here and nowhere else. The daemon, the sandbox, the MCP server and the demo
are imported lazily when their command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final, TypeVar

import grpc

from pinsched.cli import errors as cli_errors
from pinsched.cli import verbs
from pinsched.cli.requests import (
    UsageError,
)
from pinsched.config import Config, load_config
from pinsched_client import (
    DEFAULT_TARGET,
    AsyncClient,
)

T = TypeVar("T")
SANDBOX_HELP: Final = "a local Pinterest-v5-compatible server with fault injection"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run *coro* on a uvloop event loop (the stdlib loop where uvloop is unavailable)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _load(args: argparse.Namespace) -> Config:
    return load_config(args, os.environ, args.config or os.environ.get("PINSCHED_CONFIG") or None)


async def _serve(config: Config) -> None:
    """Run the daemon until SIGTERM or SIGINT, then drain."""
    from pinsched.app import Daemon
    from pinsched.ops import logs

    logs.configure(config.log_level, config.log_format)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(config)
    await daemon.start()
    try:
        await stop.wait()
    finally:
        await daemon.stop()


def serve(args: argparse.Namespace) -> int:
    config = _load(args)
    from pinsched.store import StoreOpenError

    try:
        run(_serve(config))
    except StoreOpenError as exc:  # locked, newer schema, corrupted, read-only, no directory
        print(f"pinsched: error: {exc}", file=sys.stderr)
        return cli_errors.EXIT_USAGE
    return 0


def config_check(args: argparse.Namespace) -> int:
    """Validate exactly what `serve` validates before it opens anything (`preflight`), then
    print the effective configuration (secrets redacted) and what is allowed but unsafe."""
    from pinsched import security
    from pinsched.preflight import preflight

    config = _load(args)
    with contextlib.redirect_stdout(sys.stderr):  # its warnings: stdout is the JSON
        run(preflight(config))
    print(json.dumps(config.redacted(), indent=2))
    for warning in security.warnings(config):
        print(f"pinsched: warning: {warning}", file=sys.stderr)
    return 0


async def _until_signal(run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run *run(stop)*, with SIGINT/SIGTERM setting *stop*."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)


def sandbox(extra: Sequence[str]) -> int:
    from pinsched.sandbox import cli as sandbox_cli

    parser = argparse.ArgumentParser(prog="pinsched sandbox", description=SANDBOX_HELP)
    sandbox_cli.add_arguments(parser)
    args = parser.parse_args(extra)
    try:
        run(_until_signal(lambda stop: sandbox_cli.run(args, stop)))
    except ValueError as exc:
        parser.error(str(exc))
    except OSError as exc:  # the port is taken
        raise UsageError(
            f"sandbox: cannot listen on {args.host}:{args.port}: "
            f"{exc.strerror or exc} (choose another --port)"
        ) from None
    return 0


def _health_target(args: argparse.Namespace) -> str:
    """--target, else PINSCHED_HEALTH_LISTEN (the plain-text health port, works whatever TLS
    the API port uses), else PINSCHED_TARGET, else the port of PINSCHED_LISTEN on loopback."""
    if args.target:
        return str(args.target)
    health = os.environ.get("PINSCHED_HEALTH_LISTEN", "").strip()
    target = health or os.environ.get("PINSCHED_TARGET")
    if target and not health:
        return str(target)
    listen = health or os.environ.get("PINSCHED_LISTEN", "").strip()
    host, sep, port = listen.rpartition(":")
    if sep and port.isdigit():
        wildcard = host in ("", "0.0.0.0", "[::]", "::")
        return f"127.0.0.1:{port}" if wildcard else listen
    return DEFAULT_TARGET


def health(args: argparse.Namespace) -> int:
    """`pinsched health`: 0 when the daemon answers SERVING, 1 otherwise (Docker HEALTHCHECK)."""
    return run(
        _check_health(_health_target(args), verbs.client_options(args), args.service, args.timeout)
    )


async def _check_health(
    target: str, options: dict[str, Any], service: str, timeout_s: float
) -> int:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = grpc.aio.insecure_channel(target)
    if options["tls"] or options["tls_root_cert"] or options["tls_client_cert"]:
        channel = grpc.aio.secure_channel(
            target,
            grpc.ssl_channel_credentials(
                root_certificates=options["tls_root_cert"],
                private_key=options["tls_client_key"],
                certificate_chain=options["tls_client_cert"],
            ),
        )
    async with channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.aio.AioRpcError as err:
            print(
                f"pinsched: unhealthy: {target}: {err.code().name}: {err.details()}",
                file=sys.stderr,
            )
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(status)
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def mcp(args: argparse.Namespace) -> int:
    """`pinsched mcp`: the MCP server on stdin/stdout, talking to the daemon like the verbs do."""
    options = verbs.client_options(args)
    target = args.target or os.environ.get("PINSCHED_TARGET") or DEFAULT_TARGET
    try:
        from pinsched.mcp.server import build_server, serve_stdio
    except ImportError as exc:
        raise UsageError(
            f"pinsched mcp needs the MCP SDK ({exc}): pip install 'pinsched[mcp]'"
        ) from None
    run(serve_stdio(build_server(lambda: AsyncClient(target, **options))))
    return 0


def demo(args: argparse.Namespace) -> int:
    from pinsched.demo import run_demo

    try:
        run(run_demo(pins=args.pins, keep_db=args.keep_db))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return 0
