"""LISTEN on PostgreSQL: the connection that hears the `NOTIFY` a write transaction sends when
it commits events (`pinsched.store.postgres.CHANNEL`), for `pinsched.feed`.

A notification is only a hint that the event log grew: the log is the truth, read by position.
A lost connection is noticed by `alive` and opened again by the caller; what was committed
meanwhile is read on the next poll.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg

from pinsched.store.postgres import CHANNEL


class Listener:
    """One connection listening on `CHANNEL`; *on_notice* runs on each notification."""

    def __init__(self, conn: asyncpg.Connection, on_notice: Callable[[], None]) -> None:
        self._conn = conn
        self._on_notice = on_notice

    @classmethod
    async def open(cls, url: str, on_notice: Callable[[], None]) -> Listener:
        conn = await asyncpg.connect(url, timeout=10)
        listener = cls(conn, on_notice)
        try:
            await conn.add_listener(CHANNEL, listener._heard)
        except BaseException:
            await conn.close()
            raise
        return listener

    def _heard(self, *_: Any) -> None:
        self._on_notice()

    @property
    def alive(self) -> bool:
        return not self._conn.is_closed()

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a broken connection says nothing new
            await self._conn.close()
