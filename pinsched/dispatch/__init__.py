"""The async shell around Pinterest writes: one dispatcher task per account (`dispatcher`) that
reads a job, paces, sends, asks `core` what the answer means (`outcome`) and commits that
decision with `store.changes.change`; the reconciliation of unknown outcomes (`reconciling`);
deletes and PATCHes of published pins (`remote`); and the `router` that sends every committed
job where `core.route` says.

Rule: no decision of its own lives here (decisions are `core`'s); it may import `core`, the store,
the Pinterest client and the clock, never the API, the HTTP door or the CLI.
"""
