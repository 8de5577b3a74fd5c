"""The HTTP door's own Timestamp printer gives exactly `Timestamp.ToJsonString()`."""

from __future__ import annotations

import random

import pytest
from google.protobuf import timestamp_pb2

from pinsched.http.fastjson import timestamp_json

EDGES = [
    (-62135596800, 0),
    (253402300799, 999_999_999),
    (0, 0),
    (0, 1),
    (-1, 5),
    (1_700_000_000, 123_000_000),
    (1_700_000_000, 123_456_000),
    (1_700_000_000, 123_456_789),
]


def test_every_fraction_form_matches_to_json_string() -> None:
    """Whole seconds, 3, 6 and 9 fraction digits, the range's ends and random instants all
    print as `ToJsonString` prints them."""
    rng = random.Random(17)
    cases = list(EDGES)
    for _ in range(5000):
        seconds = rng.randint(-62135596800, 253402300799)
        nanos = rng.choice(
            [
                0,
                rng.randint(0, 999) * 1_000_000,
                rng.randint(0, 999_999) * 1000,
                rng.randint(0, 999_999_999),
            ]
        )
        cases.append((seconds, nanos))
    for seconds, nanos in cases:
        ts = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
        assert timestamp_json(ts) == ts.ToJsonString()


@pytest.mark.parametrize(("seconds", "nanos"), [(253402300800, 0), (-62135596801, 0), (0, -1)])
def test_out_of_range_fails_like_to_json_string(seconds: int, nanos: int) -> None:
    """An invalid Timestamp raises the ValueError `ToJsonString` raises."""
    ts = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    with pytest.raises(ValueError, match="Timestamp is not valid") as expected:
        ts.ToJsonString()
    with pytest.raises(ValueError, match="Timestamp is not valid") as got:
        timestamp_json(ts)
    assert str(got.value) == str(expected.value)
