"""Persistent replay memory: a fast in-memory check backed by the ``seen_message`` table.

The in-memory map answers ``check_and_remember`` synchronously inside envelope verification.
The row is inserted in the same transaction as the request's log entry, and its primary key is
the final word when several processes share one database (a duplicate insert is a replay).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from protocol.errors import Reason

from ..store.engine import begin_write
from ..store.tables import SeenMessage

T_SEEN = SeenMessage.__table__  # type: ignore[attr-defined]


class ChangeRejected(Exception):
    """A state change refused for a protocol reason; the log records it as refused."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


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

    @staticmethod
    async def persist(
        conn: AsyncConnection, sender: str, message_id: str, expires_at: datetime
    ) -> None:
        try:
            async with conn.begin_nested():
                await conn.execute(
                    T_SEEN.insert().values(
                        sender=sender, message_id=message_id, expires_at=expires_at
                    )
                )
        except IntegrityError:
            raise ChangeRejected(Reason.REPLAYED, f"message id {message_id} already seen") from None

    async def prune(self, engine: AsyncEngine, now: datetime) -> int:
        """Forget ids past their expiry (in memory and in the table); a scheduled job runs this."""
        self._seen = {k: v for k, v in self._seen.items() if v >= now}
        async with begin_write(engine) as conn:
            result = await conn.execute(delete(T_SEEN).where(T_SEEN.c.expires_at < now))
        return int(result.rowcount or 0)
