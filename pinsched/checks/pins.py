"""Remote checks of a pin against Pinterest before it is due: the checks of `validate_only` and
of the look ahead of a job's moment (`pinsched.checks.at_risk`). I/O: Pinterest reads only (never a
write, so never the account's write bucket) and the media URLs.

`Checker.check(account, pin)` answers every `Problem` it finds:

* the account's access token is accepted (`GET /v5/user_account`; refused → a precondition)
  with the scopes publishing needs (`PUBLISH_SCOPES`, from the scopes Pinterest said it granted
  at the last token response: one missing → a precondition naming it; never said → a problem
  marked `unchecked`, which is no error but is said as such);
* the board exists and belongs to the token's user (`GET /v5/boards/{id}`);
* the section exists on it (`GET /v5/boards/{id}/sections`, every page);
* each image URL (image, carousel item, video cover) answers an image under Pinterest's size
  limit (`pinsched.media.urlprobe`, which never fetches link-local or metadata addresses);
* a `video_id` media id is one of the token's user's media (`GET /v5/media/{id}`: Pinterest
  answers 404 for another user's) and its status is `succeeded` or `processing` (not `failed`,
  not `registered` without the bytes uploaded).

A check that could not be made (Pinterest or a host unreachable, a 5xx or a 429) is a problem
marked `unavailable`. A `video_url` / `video_asset` video is staged by pinsched itself (its
state is the job's `media`), so there is no media id to check before staging.

`raise_for(problems)` turns them into the API's error: FAILED_PRECONDITION for refused
credentials, else INVALID_ARGUMENT naming every field (UNAVAILABLE when every problem is a
check that could not be made).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from pinsched.accounts.keeper import Refused, Unreachable, verify_account
from pinsched.core.accounts import Account
from pinsched.core.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    RemoteUnavailable,
)
from pinsched.core.jobs import Carousel, ImageUrl, PinSpec, Video
from pinsched.media.urlprobe import UrlProbe
from pinsched.pinterest import client as pt

#: The OAuth scopes creating a pin needs that pinsched checks (Pinterest's POST /v5/pins).
PUBLISH_SCOPES: Final = ("pins:write", "boards:read")
#: Pages of sections read at most when looking for one.
SECTION_PAGES: Final = 10
#: `GET /v5/media/{id}` statuses a `video_id` pin can be created with (processing: by then).
USABLE_MEDIA: Final = ("succeeded", "processing")
MEDIA_PROBLEMS: Final = {
    "failed": "failed Pinterest's processing",
    "registered": "was registered but its video was never uploaded",
}


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    message: str
    precondition: bool = False  # the account, not the request, is wrong
    unavailable: bool = False  # the check could not be made
    unchecked: bool = False  # nothing to check against: said, never an error


def _answer(err: Any) -> str:
    code = f", code {err.pinterest_code}" if err.pinterest_code else ""
    return f"Pinterest answered HTTP {err.http_status}{code}: {err.message}"


class Checker:
    def __init__(
        self, client: pt.PinterestClient, probe: UrlProbe, *, timeout_s: float = 10.0
    ) -> None:
        self.client, self.probe, self.timeout_s = client, probe, timeout_s

    async def check(
        self,
        account: Account,
        pin: PinSpec,
        *,
        prefix: str = "pin",
        account_field: str = "account_id",
    ) -> list[Problem]:
        """Every problem of *pin* published with *account*; [] when all checks pass."""
        verified = await verify_account(self.client, account, timeout_s=self.timeout_s)
        if isinstance(verified, Refused):
            return [
                Problem(
                    account_field,
                    f"Pinterest refuses the account's access token: {verified.message}",
                    precondition=True,
                )
            ]
        if isinstance(verified, Unreachable):
            return [
                Problem(
                    account_field,
                    f"could not check the credentials with Pinterest: {verified.message}",
                    unavailable=True,
                )
            ]
        problems = scope_problems(account, account_field)
        if any(p.precondition for p in problems):
            return problems
        problems += await self._board(account, pin, prefix, verified.username)
        if isinstance(pin.media, Video):
            problems += await self._video(account, pin.media.media_id, prefix)
        for field, url in image_urls(pin, prefix):
            if (found := await self.probe.image(url)) is not None:
                problems.append(
                    Problem(field, f"{url} {found.message}", unavailable=found.unavailable)
                )
        return problems

    async def _board(
        self, account: Account, pin: PinSpec, prefix: str, username: str
    ) -> list[Problem]:
        field = f"{prefix}.board_id"
        out = await self.client.read(
            account.access_token, f"/boards/{pin.board_id}", timeout_s=self.timeout_s
        )
        if isinstance(out, pt.Rejected | pt.AuthExpired):
            return [
                Problem(
                    field,
                    f"board {pin.board_id} is not one of the account's boards: "
                    f"{_answer(out.error)}",
                )
            ]
        if not isinstance(out, pt.Delivered):
            return [
                Problem(
                    field,
                    f"could not check board {pin.board_id}: {out.error.message}",
                    unavailable=True,
                )
            ]
        owner = out.pin.get("owner")
        name = owner.get("username") if isinstance(owner, dict) else None
        if name and username and name != username and not account.ad_account_id:
            return [
                Problem(
                    field,
                    f"board {pin.board_id} belongs to {name}, not to the account's user {username}",
                )
            ]
        if pin.board_section_id:
            return await self._section(account, pin, prefix)
        return []

    async def _video(self, account: Account, media_id: str, prefix: str) -> list[Problem]:
        field = f"{prefix}.media_source.video_id.media_id"
        out = await self.client.read(
            account.access_token, f"/media/{media_id}", timeout_s=self.timeout_s
        )
        if isinstance(out, pt.Rejected | pt.AuthExpired):
            return [
                Problem(
                    field,
                    f"media {media_id} is not one of the account's media: {_answer(out.error)}",
                )
            ]
        if not isinstance(out, pt.Delivered):
            return [
                Problem(
                    field,
                    f"could not check media {media_id}: {out.error.message}",
                    unavailable=True,
                )
            ]
        status = str(out.pin.get("status") or "")
        if status in USABLE_MEDIA:
            return []
        said = f"Pinterest answered status {status!r} (GET /v5/media/{{media_id}})"
        why = MEDIA_PROBLEMS.get(status, "is not a video Pinterest can publish")
        return [Problem(field, f"media {media_id} {why}: {said}")]

    async def _section(self, account: Account, pin: PinSpec, prefix: str) -> list[Problem]:
        field = f"{prefix}.board_section_id"
        bookmark = ""
        for _ in range(SECTION_PAGES):
            params = {"page_size": "250", **({"bookmark": bookmark} if bookmark else {})}
            out = await self.client.read(
                account.access_token,
                f"/boards/{pin.board_id}/sections",
                params=params,
                timeout_s=self.timeout_s,
            )
            if not isinstance(out, pt.Delivered):
                unavailable = not isinstance(out, pt.Rejected)
                return [
                    Problem(
                        field,
                        f"could not list the sections of board {pin.board_id}: "
                        f"{_answer(out.error)}",
                        unavailable=unavailable,
                    )
                ]
            items = out.pin.get("items") or []
            if any(isinstance(s, dict) and str(s.get("id")) == pin.board_section_id for s in items):
                return []
            bookmark = str(out.pin.get("bookmark") or "")
            if not bookmark:
                break
        return [
            Problem(
                field,
                f"board {pin.board_id} has no section {pin.board_section_id} "
                "(GET /v5/boards/{id}/sections)",
            )
        ]


def scope_problems(account: Account, field: str = "account_id") -> list[Problem]:
    """The scopes of `PUBLISH_SCOPES` the account's token lacks (a precondition), or that they
    cannot be checked because Pinterest never said them (`unchecked`)."""
    if account.scopes is None:
        return [
            Problem(
                field,
                "the token's scopes are not checked: Pinterest has not said them yet (they are "
                "recorded at the next token refresh)",
                unchecked=True,
            )
        ]
    missing = [s for s in PUBLISH_SCOPES if s not in account.scopes]
    if not missing:
        return []
    granted = ", ".join(account.scopes) or "none"
    return [
        Problem(
            field,
            f"the account's token lacks the scope{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} that publishing needs (granted: {granted}); authorise the "
            "account again with it",
            precondition=True,
        )
    ]


def unchecked(problems: Sequence[Problem]) -> str:
    """What could not be checked, in one line ("" when everything was)."""
    return summary([p for p in problems if p.unchecked])


def image_urls(pin: PinSpec, prefix: str = "pin") -> list[tuple[str, str]]:
    """The image URLs Pinterest will fetch for *pin*, each with its field path."""
    media, at = pin.media, f"{prefix}.media_source"
    if isinstance(media, ImageUrl):
        return [(f"{at}.image_url.url", media.url)]
    if isinstance(media, Carousel):
        return [
            (f"{at}.multiple_image_urls.items[{i}].url", item.url)
            for i, item in enumerate(media.items)
        ]
    if isinstance(media, Video) and media.cover_image_url:
        return [(f"{at}.video_id.cover_image_url", media.cover_image_url)]
    return []


def summary(problems: Sequence[Problem]) -> str:
    """The problems in one line (the reason of `job.at_risk`)."""
    return "; ".join(f"{p.field}: {p.message}" for p in problems)


def raise_for(problems: Sequence[Problem]) -> None:
    """Raise the API error for *problems* (nothing when there are none; `unchecked` ones are
    no error)."""
    problems = [p for p in problems if not p.unchecked]
    if not problems:
        return
    if any(p.precondition for p in problems):
        raise FailedPrecondition(summary([p for p in problems if p.precondition]))
    if all(p.unavailable for p in problems):
        raise RemoteUnavailable(summary(problems))
    raise InvalidArgument([FieldViolation(p.field, p.message) for p in problems])
