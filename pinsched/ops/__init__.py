"""Operations: what running the daemon safely needs, whatever it schedules.

`logs` (structlog set-up, secret redaction), `metrics` and `rpc_metrics` (Prometheus), `crypto`
(tokens encrypted at rest; renamed from `secrets`, which shadowed the standard library's module),
`masking` (credentials out of URLs and messages), `limits` (every bound a caller can run into,
for every door) and `listen` (the listen-address policy, once for the gRPC and HTTP doors).

Rule: these modules observe, protect and bound; none decides what happens to a job or an
account. They are used by the shell (app, api, http, webhooks, config, cli) and use only the
store, config, the domain types, each other and `api.guard.method_labels` (the RPC metric
labels); metrics names the dispatcher, scheduler and registry for type checking only.
"""
