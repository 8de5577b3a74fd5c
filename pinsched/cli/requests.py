"""The command line's flags turned into request messages: pure functions (apart from reading
`--image-file` and `-` tokens from stdin) used by `pinsched.cli` and its tests. Bad local input is
`UsageError` (exit code 2 before anything is sent)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pinsched.api.account_convert import posting_schedule_to_proto
from pinsched.cli import video as cli_video
from pinsched.core import slots
from pinsched.v1 import account_pb2, job_pb2, scheduler_pb2
from pinsched_client import (
    at,
    check_api_token,
    duration,
    local_time,
    parse_instant,
    parse_utc_offset,
    parse_wall_time,
    pin,
)

T = TypeVar("T")

IMAGE_TYPES: Final = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
NONEXISTENT: Final = {
    "reject": scheduler_pb2.NONEXISTENT_TIME_POLICY_REJECT,
    "shift-forward": scheduler_pb2.NONEXISTENT_TIME_POLICY_SHIFT_FORWARD,
}
AMBIGUOUS: Final = {
    "reject": scheduler_pb2.AMBIGUOUS_TIME_POLICY_REJECT,
    "earlier": scheduler_pb2.AMBIGUOUS_TIME_POLICY_EARLIER,
    "later": scheduler_pb2.AMBIGUOUS_TIME_POLICY_LATER,
}
PIN_FLAGS: Final = {  # argparse dest → Pin field
    "board": "board_id",
    "board_section": "board_section_id",
    "title": "title",
    "description": "description",
    "link": "link",
    "alt_text": "alt_text",
    "dominant_color": "dominant_color",
}


class UsageError(Exception):
    """Bad local input, reported with exit code 2 before anything is sent."""


# -- flags → requests (pure, apart from reading --image-file and '-' tokens from stdin) ----------


def arg_type(parse: Callable[[str], T]) -> Callable[[str], T]:
    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def count_arg(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def time_policies(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "nonexistent_time_policy": NONEXISTENT.get(args.nonexistent or "", 0),
        "ambiguous_time_policy": AMBIGUOUS.get(args.ambiguous or "", 0),
    }


def _apply_time(args: argparse.Namespace, target: Any) -> list[str]:
    """Set the time fields the flags give on a request or a Job; return their paths."""
    if args.local is None and (args.tz is not None or args.utc_offset is not None):
        raise UsageError("--tz and --utc-offset go with --local")
    paths = []
    try:
        if args.at is not None:
            target.scheduled_at.CopyFrom(at(parse_instant(args.at)))
            paths.append("scheduled_at")
        elif args.local is not None:
            wall = parse_wall_time(args.local)
            if args.tz is not None:
                ZoneInfo(args.tz)  # fail here rather than on the daemon
                target.local_time.CopyFrom(local_time(wall, time_zone=args.tz))
            elif args.utc_offset is not None:
                offset = parse_utc_offset(args.utc_offset)
                target.local_time.CopyFrom(local_time(wall, utc_offset=offset))
            else:
                raise UsageError("--local needs --tz ZONE or --utc-offset +HH:MM")
            paths.append("local_time")
    except ZoneInfoNotFoundError:
        raise UsageError(f"--tz {args.tz!r}: unknown IANA time zone") from None
    except ValueError as exc:
        flag = "--at" if args.at is not None else "--local/--tz/--utc-offset"
        raise UsageError(f"{flag}: {exc}") from None
    if args.window is not None:
        target.delivery_window.CopyFrom(duration(args.window))
        paths.append("delivery_window")
    return paths


def _media(args: argparse.Namespace) -> dict[str, Any]:
    if (
        sum(
            bool(getattr(args, f, None))
            for f in ("image_url", "image_file", "video_id", "video_url", "video_file")
        )
        > 1
    ):
        raise UsageError(
            "give one media source: --image-url, --image-file, --video-id, "
            "--video-url or --video-file"
        )
    if args.image_url:
        urls: list[str] = args.image_url
        return {"image_url": urls[0]} if len(urls) == 1 else {"image_urls": urls}
    if args.image_file:
        path = Path(args.image_file)
        content_type = IMAGE_TYPES.get(path.suffix.lower())
        if content_type is None:
            raise UsageError(f"--image-file {path}: expected a .jpg, .jpeg or .png file")
        try:
            return {"image_base64": path.read_bytes(), "content_type": content_type}
        except OSError as exc:
            raise UsageError(f"--image-file {path}: {exc.strerror or exc}") from None
    if args.video_id:
        if args.cover_image_url is None:
            raise UsageError("--video-id needs --cover-image-url")
        return {"video_id": args.video_id, "cover_image_url": args.cover_image_url}
    try:
        return cli_video.media(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def build_schedule_request(args: argparse.Namespace) -> scheduler_pb2.SchedulePinRequest:
    """Return the SchedulePinRequest that the `schedule` / `preview` flags describe."""
    if not args.board:
        raise UsageError("--board is required")
    media = _media(args)
    if not media:
        raise UsageError(
            "give the pin's media: --image-url URL, --image-file PATH, "
            "--video-url URL or --video-file PATH"
        )
    if args.at is None and args.local is None and args.next_free_slot is None:
        raise UsageError(
            "give the time: --at ISO8601-with-offset, --local ... --tz ZONE, or --next-free-slot"
        )
    fields: dict[str, Any] = {
        f: getattr(args, d) or "" for d, f in PIN_FLAGS.items() if d != "board"
    }
    request = scheduler_pb2.SchedulePinRequest(
        request_id=getattr(args, "request_id", None) or "",  # empty: the client fills a uuid4
        account_id=args.account,
        pin=pin(args.board, **fields, **media),
        **time_policies(args),
    )
    _apply_time(args, request)
    if getattr(args, "retry_for", None) is not None:
        request.retry_for.CopyFrom(duration(args.retry_for))
    if args.next_free_slot is not None:
        request.next_free_slot.CopyFrom(next_free_slot_arg(args.next_free_slot))
    request.also_boards.extend(args.also_board)
    if args.board_interval is not None:
        request.board_interval.CopyFrom(duration(args.board_interval))
    request.validate_only = bool(getattr(args, "validate_only", False))
    return request


def next_free_slot_arg(text: str) -> scheduler_pb2.NextFreeSlot:
    msg = scheduler_pb2.NextFreeSlot()
    if text != "now":
        try:
            msg.not_before.CopyFrom(at(parse_instant(text)))
        except ValueError as exc:
            raise UsageError(f"--next-free-slot: {exc}") from None
    return msg


def build_job_update(args: argparse.Namespace) -> tuple[job_pb2.Job, list[str]]:
    """Return the Job and the update_mask paths of the `update` flags given (and only those)."""
    job = job_pb2.Job(id=args.job_id)
    paths = []
    for dest, field in PIN_FLAGS.items():
        if getattr(args, dest) is not None:
            setattr(job.pin, field, getattr(args, dest))
            paths.append(f"pin.{field}")
    media = _media(args)
    if media:
        job.pin.media_source.CopyFrom(pin("0", **media).media_source)
        paths.append("pin.media_source")
    paths += _apply_time(args, job)
    if args.next_free_slot is not None:
        paths.append("next_free_slot")
    if args.also_board or args.board_interval is not None:
        raise UsageError("--also-board and --board-interval are for schedule, not update")
    if not paths:
        raise UsageError("nothing to update: give at least one field flag")
    return job, paths


def build_account(
    args: argparse.Namespace, *, create: bool
) -> tuple[account_pb2.Account, list[str]]:
    """Return the Account and update_mask paths that `accounts create|update` flags describe."""
    account = account_pb2.Account(id="" if create else args.account_id)
    paths = []
    for field in ("display_name", "access_token", "refresh_token"):
        value = getattr(args, field)
        if value is not None:
            value = sys.stdin.readline().strip() if value == "-" else value
            if field != "display_name":  # Pinterest tokens travel in a header too
                try:
                    check_api_token(value, name="--" + field.replace("_", "-"))
                except ValueError as exc:
                    raise UsageError(
                        str(exc).replace("an API token", "a Pinterest token")
                    ) from None
            setattr(account, field, value)
            paths.append(field)
    for field in ("ad_account_id", "api_base"):  # checked by the daemon ("" clears)
        value = getattr(args, field)
        if value is not None:
            setattr(account, field, value)
            paths.append(field)
    for field in ("min_spacing", "max_per_hour", "max_per_day", "writes_per_minute"):
        value = getattr(args, field)
        if isinstance(value, timedelta):
            account.pacing.min_spacing.CopyFrom(duration(value))
        elif value is not None:
            setattr(account.pacing, field, value)
        paths += [f"pacing.{field}"] if value is not None else []
    if create and account.HasField("pacing") and args.writes_per_minute is None:
        account.pacing.writes_per_minute = 100  # the daemon's default; 0 would mean "no cap"
    if not create and args.pause is not None:
        account.paused = args.pause
        paths.append("paused")
    if args.posting_schedule is not None:
        account.posting_schedule.SetInParent()
        if args.posting_schedule.strip():
            try:
                parsed = slots.parse(
                    args.posting_schedule, args.schedule_tz or "UTC", args.max_per_slot or 1
                )
            except ValueError as exc:
                raise UsageError(f"--posting-schedule: {exc}") from None
            account.posting_schedule.CopyFrom(posting_schedule_to_proto(parsed))
        paths.append("posting_schedule")
    elif args.schedule_tz is not None or args.max_per_slot is not None:
        raise UsageError("--schedule-tz and --max-per-slot go with --posting-schedule")
    if not create and not paths:
        raise UsageError("nothing to update: give at least one flag")
    return account, paths
