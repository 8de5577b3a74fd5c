"""The guard's pure helpers: the `authorization` header and the metric labels of a method path."""

from __future__ import annotations

import pytest

from pinsched.api.guard import bearer_token, method_labels


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", b"abc"),
        ("bearer abc", b"abc"),
        ("BEARER  abc ", b"abc"),
        (b"Bearer abc", b"abc"),
        ("abc", None),
        ("Basic abc", None),
        ("Bearerabc", None),
        ("", None),
    ],
)
def test_bearer_token_parsing(header: str | bytes, token: bytes | None) -> None:
    """The token of `Bearer <token>`, the scheme in any case; None for any other form."""
    assert bearer_token(header) == token


@pytest.mark.parametrize(
    ("path", "labels"),
    [
        ("/pinsched.v1.PinScheduler/GetJob", ("pinsched.v1.PinScheduler", "GetJob")),
        ("/pinsched.v1.PinScheduler/Nope", ("unknown", "unknown")),
        ("/x.Y/Z", ("unknown", "unknown")),
        ("", ("unknown", "unknown")),
        ("/grpc.health.v1.Health/Check", ("grpc.health.v1.Health", "Check")),
    ],
)
def test_metric_labels_come_from_the_served_methods(path: str, labels: tuple[str, str]) -> None:
    """A path the daemon does not serve gets the `unknown` labels: callers cannot mint series."""
    assert method_labels(path) == labels
