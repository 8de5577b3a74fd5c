"""The router: every committed job goes where `core.route.route` says (the scheduler's heap,
its account's dispatcher, or neither). Fed with the store's committed events, so no writer
decides by hand where its job goes next. With several daemons on one database (`ownership`),
jobs of accounts this daemon does not own are ignored: their owner routes them."""

from __future__ import annotations

from collections.abc import Sequence

from pinsched.clock import Clock
from pinsched.core import notes
from pinsched.core.jobs import Job
from pinsched.core.membership import Ownership
from pinsched.core.route import Route, route
from pinsched.dispatch.dispatcher import Dispatchers
from pinsched.scheduler import Scheduler
from pinsched.store import Event


class Router:
    def __init__(
        self,
        scheduler: Scheduler,
        dispatchers: Dispatchers,
        clock: Clock,
        ownership: Ownership | None = None,
    ) -> None:
        self.scheduler, self.dispatchers, self.clock = scheduler, dispatchers, clock
        self.ownership = ownership

    def observe(self, events: Sequence[Event]) -> None:
        """Committed events (the store's sink, in sequence order): route each changed job."""
        for event in events:
            if event.job is not None and not notes.is_note(event.transition):
                self.route(event.job)

    def route(self, job: Job) -> None:
        if self.ownership is not None and not self.ownership.owns(job.account_id):
            return  # another daemon publishes this account
        match route(job, now=self.clock.now()):
            case Route.HEAP:
                self.scheduler.track(job)
            case Route.DISPATCH:
                self.scheduler.untrack(job.id)
                self.dispatchers.submit(job)
            case Route.UNTRACK:
                self.scheduler.untrack(job.id)
