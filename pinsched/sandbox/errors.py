"""Pinterest-style API errors raised by the sandbox. Pure: no I/O.

Owns the one exception type (`ApiError`) and the catalogue of error bodies the sandbox sends.
Every body is `Pinterest.Lib.Error`: ``{"code": <Pinterest code>, "message": <text>}``; the
``code`` is Pinterest's own number, not the HTTP status.

    HTTP  code  message                                              when
    400   1     "Invalid request: <detail> - '<field>'"              body/query validation
    400   1     "Whoops! It looks like you entered an invalid URL…"  a URL that is not http(s)
    400   1     "Sorry we could not fetch the image."                url has sandbox-unfetchable
    400   1     "Invalid refresh token."                             unknown/rotated/revoked refresh
    401   2     "Authentication failed."                             bad bearer token or Basic creds
    403   29    "You are not permitted to access that resource."     another user's pin (GET/DELETE)
    403   29    "Not authorized to update Pin."                      another user's pin (PATCH)
    403   233   "Your image is too small. …"                         url contains sandbox-too-small
    403   235   "Sorry, this image is broken. …"                     url contains sandbox-broken
    404   40    "Board not found."                                   board missing or not the user's
    404   50    "Pin not found."                                     pin missing
    404   2031  "Sorry! We couldn't find this board section."        section not on the board
    429   8     "This request exceeded a rate limit. …"              org_write budget spent
    429   9     "Sorry! You've hit a block (Pins) …"                 spam fault (see faults.py)
    5xx   2787  "Sorry! Something went wrong on our end."            status faults

Does not decide *when* an error applies; state.py, validation.py and faults.py do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final


class ApiError(Exception):
    """An HTTP error response with a Pinterest error body."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} code={code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, object]:
        """Return the JSON body Pinterest would send."""
        return {"code": self.code, "message": self.message}


INVALID_URL: Final = (
    "Whoops! It looks like you entered an invalid URL. Try creating a Pin again with a valid URL."
)
RATE_LIMIT_MESSAGE: Final = (
    "This request exceeded a rate limit. This can happen if the client exceeds one of the "
    "published rate limits or if multiple write operations are applied to an object within a "
    "short time window."
)
SPAM_MESSAGE: Final = (
    "Sorry! You've hit a block (Pins) we have in place to combat spam. Please try again later!"
)
SERVER_ERROR_MESSAGE: Final = "Sorry! Something went wrong on our end."


def invalid(detail: str, field: str | None = None) -> ApiError:
    """Return a 400 code 1 validation error in Pinterest's ``Invalid request: …`` style."""
    suffix = f" - {field!r}" if field else ""
    return ApiError(400, 1, f"Invalid request: {detail}{suffix}")


def invalid_url() -> ApiError:
    """Return the 400 a non-http(s) URL gets."""
    return ApiError(400, 1, INVALID_URL)


def auth_failed() -> ApiError:
    """Return the 401 for a missing, unknown or expired token or bad client credentials."""
    return ApiError(401, 2, "Authentication failed.")


def board_not_found() -> ApiError:
    """Return the 404 for a board that is missing or not owned by the caller."""
    return ApiError(404, 40, "Board not found.")


def section_not_found() -> ApiError:
    """Return the 404 for a board section that is not on the board."""
    return ApiError(404, 2031, "Sorry! We couldn't find this board section.")


def pin_not_found() -> ApiError:
    """Return the 404 for a pin that does not exist."""
    return ApiError(404, 50, "Pin not found.")


def pin_forbidden(*, update: bool = False) -> ApiError:
    """Return the 403 for a pin that belongs to another user."""
    if update:
        return ApiError(403, 29, "Not authorized to update Pin.")
    return ApiError(403, 29, "You are not permitted to access that resource.")


def image_too_small() -> ApiError:
    """Return the 403 for an image Pinterest finds too small (permanent)."""
    return ApiError(
        403, 233, "Your image is too small. Please choose a larger image and try again."
    )


def image_broken() -> ApiError:
    """Return the 403 for an image Pinterest cannot decode (permanent)."""
    return ApiError(403, 235, "Sorry, this image is broken. Please pick a different image.")


def image_unfetchable() -> ApiError:
    """Return the 400 for an image Pinterest could not download (transient in reality)."""
    return ApiError(400, 1, "Sorry we could not fetch the image.")


def invalid_refresh_token() -> ApiError:
    """Return the 400 for a refresh token that is unknown, rotated away, revoked or expired."""
    return ApiError(400, 1, "Invalid refresh token.")


TRIAL_APP_MESSAGE = (
    "Apps with Trial access may not create Pins in production https://api.pinterest.com - use "
    "API Sandbox https://api-sandbox.pinterest.com instead."
)


def trial_app() -> ApiError:
    """Return the 403 code 29 a Trial app gets for pin writes in production."""
    return ApiError(403, 29, TRIAL_APP_MESSAGE)


def rate_limited(headers: Mapping[str, str] | None = None) -> ApiError:
    """Return the 429 code 8 rate-limit error."""
    return ApiError(429, 8, RATE_LIMIT_MESSAGE, headers=headers)


def for_status(status: int) -> ApiError:
    """Return a plausible Pinterest error for an arbitrary HTTP *status* (used by faults)."""
    if status >= 500:
        return ApiError(status, 2787, SERVER_ERROR_MESSAGE)
    known: dict[int, tuple[int, str]] = {
        400: (1, "Invalid parameters."),
        401: (2, "Authentication failed."),
        403: (29, "You are not permitted to access that resource."),
        404: (404, "Not found."),
        409: (409, "Conflict."),
        429: (8, RATE_LIMIT_MESSAGE),
    }
    code, message = known.get(status, (status, "Request failed."))
    return ApiError(status, code, message)
