"""The router: every committed job goes where `core.route.route` says (the scheduler's heap,
its account's dispatcher, or neither). Fed with the store's committed events, so no writer
decides by hand where its job goes next."""

from __future__ import annotations

from collections.abc import Sequence

from pinsched.clock import Clock
from pinsched.core import notes
from pinsched.core.jobs import Job
from pinsched.core.route import Route, route
from pinsched.dispatch.dispatcher import Dispatchers
from pinsched.scheduler import Scheduler
from pinsched.store import Event


class Router:
    def __init__(self, scheduler: Scheduler, dispatchers: Dispatchers, clock: Clock) -> None:
        self.scheduler, self.dispatchers, self.clock = scheduler, dispatchers, clock

    def observe(self, events: Sequence[Event]) -> None:
        """Committed events (the store's sink, in sequence order): route each changed job."""
        for event in events:
            if event.job is not None and not notes.is_note(event.transition):
                self.route(event.job)

    def route(self, job: Job) -> None:
        match route(job, now=self.clock.now()):
            case Route.HEAP:
                self.scheduler.track(job)
            case Route.DISPATCH:
                self.scheduler.untrack(job.id)
                self.dispatchers.submit(job)
            case Route.UNTRACK:
                self.scheduler.untrack(job.id)
