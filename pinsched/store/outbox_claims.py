"""Webhook deliveries claimed by one daemon at a time (PostgreSQL, several daemons).

Each daemon's sender scans the outbox; on PostgreSQL a scan *claims* what it will send, in one
statement: the due deliveries that are first in line for their job (`order_key`), not claimed
by another daemon (or whose claim has run out), locked `FOR UPDATE SKIP LOCKED` so two daemons
scanning at once never wait for each other nor take the same row, marked `claimed_by` this
daemon until `claim_until`. The attempt's result is recorded only while the claim is still this
daemon's (`RECORD_CLAIMED`), and clears it.

* In order per job: a job's next delivery is never first in line before the one before it is
  DELIVERED or DEAD, claimed or not.
* A killed daemon's claims come back when they run out (`claim_until`, on the injected clock);
  a daemon that stops releases the claims it did not finish (`RELEASE`).
* At least once: a claim that ran out while its request was still being answered is sent again
  by another daemon (the same `webhook-id`; receivers deduplicate by it).

SQLite (one daemon) uses the plain scan of `pinsched.store.outbox`; these columns stay NULL.
"""

from __future__ import annotations

from typing import Final

from pinsched.store.rows import _DELIVERY_COLUMNS

CLAIM: Final = (
    "UPDATE webhook_deliveries SET claimed_by = ?, claim_until = ? WHERE id IN ("
    "SELECT d.id FROM webhook_deliveries d WHERE d.endpoint = ? AND d.state = 'PENDING' "
    "AND d.next_attempt_at <= ? AND (d.claim_until IS NULL OR d.claim_until <= ? "
    "OR d.claimed_by = ?) AND d.id = (SELECT min(e.id) FROM webhook_deliveries e "
    "WHERE e.endpoint = d.endpoint AND e.order_key = d.order_key AND e.state = 'PENDING') "
    f"ORDER BY d.id LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING {_DELIVERY_COLUMNS}"
)

#: Appended to the WHERE of an attempt's record: only while the claim is this daemon's.
RECORD_CLAIMED: Final = " AND state = 'PENDING' AND claimed_by = ?"

RELEASE: Final = (
    "UPDATE webhook_deliveries SET claimed_by = NULL, claim_until = NULL "
    "WHERE claimed_by = ? AND state = 'PENDING'"
)
