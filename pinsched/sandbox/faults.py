"""Fault-injection rules for the sandbox. Pure: decisions only; the server acts on them.

A `FaultRule` matches requests by method (``"*"`` = any), path prefix and optionally the
authenticated username. Each matching request *fires* the rule when its `probability` draw
(seeded RNG) succeeds (no probability = always); a rule with `times=N` is removed after firing N
times (no `times` = until cleared). Kinds:

    status               answer `status` (default 500) with a Pinterest error body (5xx: code
                         2787 "Sorry! Something went wrong on our end."); nothing is created
    rate_limit           429 code 8; ``Retry-After``, ``x-ratelimit-reset`` and
                         ``x-ratelimit-remaining: 0`` only if retry_after_s (Pinterest declares
                         no headers, so by default there are none)
    auth                 401 code 2 "Authentication failed."
    spam                 code 9 spam block; HTTP 429 by default (Pinterest's api-quickstart treats
                         spam as a 429 whose message mentions spam); set `status` to change it
    latency              wait `latency_ms` before handling (combines with any other kind)
    lost_response        handle the request normally (a valid create DOES make a pin), then send
                         nothing: mode "drop" aborts the connection at once, mode "hang" holds it
                         open for `hold_s` (or until the sandbox stops) and then aborts
    status_after_create  handle normally (pin created), then answer `status` (default 500)
    late_create          answer `status` (default 503, code 2787) at once, yet the pin (if the
                         request is valid) lands `land_after_min_s`..`land_after_max_s` later
                         (default 1..20 s, drawn from the seeded RNG): what a proxy's 5xx in
                         front of a Pinterest that carries on looks like

Only `lost_response`, `status_after_create` and `late_create` let the request reach the
handler; the others answer before it, so they never create a pin. When several rules match,
every latency rule applies and the first other rule that fires wins; later ones are not consumed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Final, Literal, cast, get_args

from pinsched.sandbox import errors
from pinsched.sandbox.errors import ApiError

FaultKind = Literal[
    "status",
    "rate_limit",
    "auth",
    "spam",
    "latency",
    "lost_response",
    "status_after_create",
    "late_create",
]
LostMode = Literal["hang", "drop"]
KINDS: Final = frozenset(get_args(FaultKind))
AFTER_HANDLER: Final = frozenset({"lost_response", "status_after_create", "late_create"})


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultRule:
    """One fault to inject; see the module docstring for the kinds."""

    kind: FaultKind
    method: str = "POST"
    path_prefix: str = "/v5/pins"
    username: str | None = None
    times: int | None = None
    probability: float | None = None
    status: int | None = None
    code: int | None = None
    message: str | None = None
    retry_after_s: float | None = None
    latency_ms: int = 0
    mode: LostMode = "drop"
    hold_s: float = 30.0
    land_after_min_s: float = 1.0
    land_after_max_s: float = 20.0

    def __post_init__(self) -> None:
        self._check_types()
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(KINDS)}")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be >= 1 (or None for unlimited)")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within 0..1")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status code")
        if self.mode not in ("hang", "drop"):
            raise ValueError("mode must be 'hang' or 'drop'")
        if self.latency_ms < 0 or self.hold_s < 0:
            raise ValueError("latency_ms and hold_s must be >= 0")
        if self.kind == "latency" and self.latency_ms == 0:
            raise ValueError("a latency fault needs latency_ms > 0")
        if not 0 <= self.land_after_min_s <= self.land_after_max_s:
            raise ValueError("land_after_min_s and land_after_max_s must be >= 0, min <= max")

    def _check_types(self) -> None:
        # The admin API builds rules from JSON, so the annotations are not a guarantee.
        def is_int(value: object) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_number(value: object) -> bool:
            return is_int(value) or isinstance(value, float)

        checks = {
            "method": isinstance(self.method, str),
            "path_prefix": isinstance(self.path_prefix, str),
            "username": self.username is None or isinstance(self.username, str),
            "times": self.times is None or is_int(self.times),
            "probability": self.probability is None or is_number(self.probability),
            "status": self.status is None or is_int(self.status),
            "code": self.code is None or is_int(self.code),
            "message": self.message is None or isinstance(self.message, str),
            "retry_after_s": self.retry_after_s is None or is_number(self.retry_after_s),
            "latency_ms": is_int(self.latency_ms),
            "hold_s": is_number(self.hold_s),
            "land_after_min_s": is_number(self.land_after_min_s),
            "land_after_max_s": is_number(self.land_after_max_s),
        }
        wrong = sorted(name for name, ok in checks.items() if not ok)
        if wrong:
            raise ValueError(f"fault fields have the wrong type: {wrong}")

    def matches(self, method: str, path: str, username: str | None) -> bool:
        """Return whether this rule applies to the request (before the probability draw)."""
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        if not path.startswith(self.path_prefix):
            return False
        return self.username is None or self.username == username

    def error(self) -> ApiError:
        """Return the error response this rule sends (not meaningful for latency/lost)."""
        if self.kind == "rate_limit":
            err = errors.rate_limited()
            if self.retry_after_s is not None:
                seconds = str(max(0, round(self.retry_after_s)))
                err.headers.update(
                    {
                        "Retry-After": seconds,
                        "x-ratelimit-reset": seconds,
                        "x-ratelimit-remaining": "0",
                    }
                )
        elif self.kind == "auth":
            err = errors.auth_failed()
        elif self.kind == "spam":
            err = ApiError(self.status or 429, 9, errors.SPAM_MESSAGE)
        else:
            err = errors.for_status(self.status or (503 if self.kind == "late_create" else 500))
        if self.code is not None:
            err.code = self.code
        if self.message is not None:
            err.message = self.message
        return err

    def to_json(self) -> dict[str, Any]:
        """Return the rule as a JSON-able dict (the admin API's format)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultRule:
        """Build a rule from the admin API's JSON; unknown keys are an error (ValueError)."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        if "kind" not in data:
            raise ValueError("fault needs a 'kind'")
        try:
            return cls(**cast("dict[str, Any]", dict(data)))
        except TypeError as exc:
            raise ValueError(str(exc)) from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultDecision:
    """What to do with one request: extra latency, and at most one error/lost rule."""

    latency_ms: int = 0
    rule: FaultRule | None = None
    land_after_s: float = 0.0  # late_create: when the pin lands, after the request arrived

    @property
    def before_handler(self) -> FaultRule | None:
        """The rule that answers instead of the handler, if any."""
        return self.rule if self.rule and self.rule.kind not in AFTER_HANDLER else None

    @property
    def after_handler(self) -> FaultRule | None:
        """The rule that replaces the handler's response, if any."""
        return self.rule if self.rule and self.rule.kind in AFTER_HANDLER else None


@dataclass(slots=True)
class _Active:
    rule: FaultRule
    remaining: int | None


class FaultBook:
    """The active rules, in insertion order, with a seeded RNG for probabilities."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self._active: list[_Active] = []

    def add(self, rule: FaultRule) -> None:
        """Activate *rule* after the existing ones."""
        self._active.append(_Active(rule, rule.times))

    def clear(self) -> None:
        """Remove every rule (the RNG keeps its position)."""
        self._active.clear()

    def reset(self) -> None:
        """Remove every rule and reseed the RNG."""
        self._active.clear()
        self._rng = random.Random(self._seed)

    def rules(self) -> list[tuple[FaultRule, int | None]]:
        """Return the active rules with how many firings each has left (None = unlimited)."""
        return [(a.rule, a.remaining) for a in self._active]

    def _fire(self, active: _Active) -> bool:
        probability = active.rule.probability
        if probability is not None and self._rng.random() >= probability:
            return False
        if active.remaining is not None:
            active.remaining -= 1
        return True

    def decide(self, method: str, path: str, username: str | None) -> FaultDecision:
        """Fire the rules that apply to one request and say what to do."""
        latency = 0
        chosen: FaultRule | None = None
        for active in list(self._active):
            rule = active.rule
            if not rule.matches(method, path, username):
                continue
            if rule.kind != "latency" and chosen is not None:
                continue
            if not self._fire(active):
                continue
            if rule.kind == "latency":
                latency += rule.latency_ms
            else:
                chosen = rule
            if active.remaining == 0:
                self._active.remove(active)
        land = 0.0
        if chosen is not None and chosen.kind == "late_create":
            land = self._rng.uniform(chosen.land_after_min_s, chosen.land_after_max_s)
        return FaultDecision(latency_ms=latency, rule=chosen, land_after_s=land)
