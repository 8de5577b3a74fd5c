"""Command-line wiring for ``pinsched sandbox`` (and ``python -m pinsched.sandbox``).

Owns: the flags, turning them into a seeded `Sandbox`, and running it until a stop event is set.
Does not install signal handlers except in `main()`, the stand-alone entry point; the main
pinsched CLI calls `add_arguments` and `run` and owns signals itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Sequence

from pinsched.sandbox import seed_demo
from pinsched.sandbox.faults import FaultRule
from pinsched.sandbox.server import Sandbox
from pinsched.sandbox.state import ACCESS_TOKEN_TTL_S, REFRESH_TOKEN_TTL_S

ANY = "*"  # FaultRule.method matching every method
V5 = "/v5/"  # FaultRule.path_prefix matching every API route


def _user_spec(raw: str) -> tuple[str, str, str | None]:
    parts = raw.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise argparse.ArgumentTypeError(
            f"expected USERNAME:ACCESS_TOKEN[:REFRESH_TOKEN], got {raw!r}"
        )
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _board_spec(raw: str) -> tuple[str, str]:
    username, sep, board_id = raw.partition(":")
    if not sep or not username or not board_id.isdigit():
        raise argparse.ArgumentTypeError(f"expected USERNAME:BOARD_ID (digits), got {raw!r}")
    return username, board_id


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _probability(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"probability must be within 0..1, got {value}")
    return value


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"seconds must be a finite number >= 0, got {raw!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sandbox flags to *parser*."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8081, help="port, 0 = any (default %(default)s)"
    )
    parser.add_argument(
        "--seed-user",
        type=_user_spec,
        action="append",
        default=[],
        metavar="USERNAME:ACCESS_TOKEN[:REFRESH_TOKEN]",
        help="create a user with these tokens (repeatable)",
    )
    parser.add_argument(
        "--seed-board",
        type=_board_spec,
        action="append",
        default=[],
        metavar="USERNAME:BOARD_ID",
        help="create a board owned by a seeded user (repeatable)",
    )
    parser.add_argument(
        "--seed-demo",
        action="store_true",
        help=f"seed user {seed_demo.USER} with the boards and tokens the README's examples use, "
        "and print how to point `pinsched serve` at this sandbox",
    )
    parser.add_argument(
        "--client-id", default="sandbox-client", help="OAuth client id (default %(default)s)"
    )
    parser.add_argument(
        "--client-secret",
        default="sandbox-secret",
        help="OAuth client secret (default %(default)s)",
    )
    parser.add_argument(
        "--write-limit-per-minute",
        type=int,
        default=0,
        help="org_write budget per user per sliding minute, 0 = unlimited (default 0)",
    )
    parser.add_argument(
        "--latency-ms", type=int, default=0, help="delay added to every /v5 request (default 0)"
    )
    parser.add_argument(
        "--fault-rate-5xx",
        type=_probability,
        default=0.0,
        help="probability that a /v5 request gets a 503 code 2787 (default 0)",
    )
    parser.add_argument(
        "--fault-rate-lost",
        type=_probability,
        default=0.0,
        help="probability that POST /v5/pins creates the pin but drops the connection",
    )
    parser.add_argument(
        "--fault-rate-429",
        type=_probability,
        default=0.0,
        help="probability that a /v5 request gets a 429 code 8 with Retry-After: 1",
    )
    parser.add_argument(
        "--fault-rate-late-create",
        type=_probability,
        default=0.0,
        help="probability that POST /v5/pins gets a 503 code 2787 while the pin still lands "
        "1-20 s later",
    )
    parser.add_argument(
        "--read-lag-s",
        type=_seconds,
        default=0.0,
        help="reads see a pin this many seconds after it lands (default 0)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for fault draws and tokens")
    parser.add_argument(
        "--access-token-ttl",
        type=_positive_int,
        default=ACCESS_TOKEN_TTL_S,
        metavar="SECONDS",
        help="lifetime of the access tokens it issues (default 30 days)",
    )
    parser.add_argument(
        "--refresh-token-ttl",
        type=_positive_int,
        default=REFRESH_TOKEN_TTL_S,
        metavar="SECONDS",
        help="lifetime of the refresh tokens it issues (default 60 days)",
    )
    parser.add_argument(
        "--media-processing-s",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how long an uploaded video stays `processing` (default 60)",
    )
    parser.add_argument(
        "--media-fail",
        action="store_true",
        help="uploaded videos end their processing `failed` instead of `succeeded`",
    )
    parser.add_argument(
        "--trial-app",
        action="store_true",
        help="answer pin writes 403 code 29, like production does for a Trial app",
    )


def build_sandbox(args: argparse.Namespace) -> Sandbox:
    """Return a `Sandbox` seeded and faulted as *args* say (not started)."""
    sandbox = Sandbox(
        write_limit_per_minute=args.write_limit_per_minute,
        seed=args.seed,
        read_lag_s=args.read_lag_s,
        access_ttl_s=args.access_token_ttl,
        refresh_ttl_s=args.refresh_token_ttl,
        trial_app=args.trial_app,
    )
    sandbox.state.media.configure(processing_s=args.media_processing_s, fail=args.media_fail)
    if args.seed_demo:
        seed_demo.seed_demo(sandbox)
    for username, access_token, refresh_token in args.seed_user:
        sandbox.add_user(username, access_token=access_token, refresh_token=refresh_token)
    for username, board_id in args.seed_board:
        sandbox.add_board(username, board_id)
    if args.client_id and args.client_secret:
        sandbox.set_client(args.client_id, args.client_secret)
    if args.latency_ms > 0:
        sandbox.add_fault(
            FaultRule(kind="latency", latency_ms=args.latency_ms, method=ANY, path_prefix=V5)
        )
    if args.fault_rate_lost > 0:
        sandbox.add_fault(FaultRule(kind="lost_response", probability=args.fault_rate_lost))
    if args.fault_rate_late_create > 0:
        sandbox.add_fault(FaultRule(kind="late_create", probability=args.fault_rate_late_create))
    if args.fault_rate_5xx > 0:
        sandbox.add_fault(
            FaultRule(
                kind="status",
                status=503,
                probability=args.fault_rate_5xx,
                method=ANY,
                path_prefix=V5,
            )
        )
    if args.fault_rate_429 > 0:
        sandbox.add_fault(
            FaultRule(
                kind="rate_limit",
                retry_after_s=1,
                probability=args.fault_rate_429,
                method=ANY,
                path_prefix=V5,
            )
        )
    return sandbox


async def run(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """Start the sandbox, print ``sandbox listening on <url>``, serve until *stop* is set."""
    sandbox = build_sandbox(args)
    url = await sandbox.start(args.host, args.port)
    try:
        print(f"sandbox listening on {url}", flush=True)
        if args.seed_demo:
            print(seed_demo.next_steps(url, args.client_id, args.client_secret), flush=True)
        await stop.wait()
    finally:
        await sandbox.stop()


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await run(args, stop)


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point: parse *argv*, serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m pinsched.sandbox",
        description="Local Pinterest API v5 stand-in (in-memory, with fault injection).",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except ValueError as exc:
        parser.error(str(exc))
    return 0
