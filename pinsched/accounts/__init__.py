"""Accounts at run time: what the daemon knows about each Pinterest account and keeps fresh.

- `cache`: the cached rows, pacers and per-token routes, holds.
- `registry`: `AccountRegistry`, the cache plus the refresh-token grant and NEEDS_REAUTH.
- `keeper`: `TokenKeeper`, which refreshes tokens ahead of expiry and warns before re-auth.
- `admin`: `AccountAdmin`, the AccountService operations (create, update, pause, verify, delete).

Rule: accounts never import `pinsched.api`, `pinsched.http`, `pinsched.mcp`, `pinsched.cli`,
`pinsched.app` or `pinsched.dispatch`; rows change through the store (compare-and-set via
`pinsched.store.changes`), and what a failed refresh means for jobs is decided elsewhere.
"""
