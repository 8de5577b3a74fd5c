"""Webhooks: the durable outbox drained to the configured HTTP endpoints, signed per Standard
Webhooks.

Rule: `messages` (bodies, event types, signatures) and `policy` (retry schedule, outcomes, the
address rule) are pure; `endpoints` (configured endpoints, the resolver), `sender` (start, stop,
redeliver) and `worker` (the send loop of one endpoint) do the I/O. Nothing here imports
`pinsched.api`: the job and account JSON is a `messages.JsonRenderer` injected by the
composition root.
"""
