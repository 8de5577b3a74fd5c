"""`pinsched sandbox --seed-demo`: the account, boards and tokens the documentation's examples use.

Owns those values (README "Try it locally", the Python client example, the grpcurl bodies) and
the text the sandbox prints after it starts: its base URL, the OAuth client pair and the commands
that point `pinsched serve` at it. The documentation test runs the examples against a sandbox
seeded by this module, so an example and the seed cannot drift apart.
"""

from __future__ import annotations

from typing import Final

from pinsched.sandbox.server import Sandbox

USER: Final = "acme"
BOARDS: Final = ("123456789", "1001")
ACCESS_TOKEN: Final = "pina_acme_sandbox"
REFRESH_TOKEN: Final = "pinr_acme_sandbox"


def seed_demo(sandbox: Sandbox) -> None:
    """Add user `acme` with the demo tokens and boards 123456789 and 1001."""
    sandbox.add_user(USER, access_token=ACCESS_TOKEN, refresh_token=REFRESH_TOKEN, board_ids=BOARDS)


def next_steps(base_url: str, client_id: str, client_secret: str) -> str:
    """What to run next, printed by `pinsched sandbox --seed-demo` once it listens."""
    return "\n".join(
        [
            f"seeded: user {USER}, boards {' and '.join(BOARDS)}, "
            f"access token {ACCESS_TOKEN}, refresh token {REFRESH_TOKEN}",
            f"OAuth client: id {client_id}, secret {client_secret}",
            "next, in another terminal (from the repository):",
            f"  export PINSCHED_PINTEREST_API_BASE={base_url}",
            f"  export PINSCHED_PINTEREST_CLIENT_ID={client_id}",
            f"  export PINSCHED_PINTEREST_CLIENT_SECRET={client_secret}",
            "  .venv/bin/pinsched serve --db ./pinsched-sandbox.db --log-format console",
            'then your commands, in a third terminal: README.md, "Try it locally", step 3',
        ]
    )
