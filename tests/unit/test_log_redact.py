"""`ops.logs._redact` remembers which log keys name credentials: the answer is the same on the
first line with a key and on every later one, whatever the key's case."""

from __future__ import annotations

from pinsched.ops import logs


def test_credential_keys_are_masked_on_every_line_whatever_their_case() -> None:
    """`Access_Token` and `api_token` are masked on the first and the second line alike; an
    ordinary key keeps its value both times."""
    for _ in range(2):
        event = logs._redact(
            None, "info", {"event": "x", "Access_Token": "a1", "api_token": "b2", "job_id": "j"}
        )
        assert event == {"event": "x", "Access_Token": "***", "api_token": "***", "job_id": "j"}
