"""Several daemons on one PostgreSQL database: membership heartbeats, account leases and the
handing over of accounts between daemons.

`member.Member` heartbeats into the `members` table, asks `core.membership` which accounts are
its own (rendezvous hashing over the live members), takes and renews their leases
(`store.leases`), and lets go of the ones that now belong to another member; `handover` is what
the daemon does when an account arrives (its pacer state, its SUBMITTED jobs reconciled first,
its due jobs) or leaves (nothing more is sent for it). A single daemon on SQLite has no member:
it owns every account, at no cost.

Rule: decisions are `core.membership`'s; this package may import `core`, the store, the clock,
the scheduler and the dispatchers, never the API, the HTTP door or the CLI.
"""
