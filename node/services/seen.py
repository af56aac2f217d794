"""Persistent replay memory: a fast in-memory check backed by the ``seen_message`` table.

The in-memory map answers ``check_and_remember`` synchronously inside envelope verification.
The row is inserted in the same transaction as the request's log entry (by the exchange log), and
its primary key is the final word when several processes share one database (a duplicate insert
is a replay).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..store.engine import begin_write
from ..store.tables import SeenMessage

T_SEEN = SeenMessage.__table__  # type: ignore[attr-defined]


class PersistentSeenIds:
    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], datetime] = {}

    async def load(self, engine: AsyncEngine, now: datetime) -> None:
        async with engine.connect() as conn:
            rows = await conn.execute(select(T_SEEN).where(T_SEEN.c.expires_at >= now))
            self._seen = {(r.sender, r.message_id): r.expires_at for r in rows}

    def check_and_remember(self, sender: str, message_id: str, expires_at: datetime) -> bool:
        key = (sender, message_id)
        if key in self._seen:
            return True
        self._seen[key] = expires_at
        return False

    async def prune(self, engine: AsyncEngine, now: datetime) -> int:
        """Forget ids past their expiry (in memory and in the table); a scheduled job runs this."""
        self._seen = {k: v for k, v in self._seen.items() if v >= now}
        async with begin_write(engine) as conn:
            result = await conn.execute(delete(T_SEEN).where(T_SEEN.c.expires_at < now))
        return int(result.rowcount or 0)
