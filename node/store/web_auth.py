"""The web pages' sign-in state in the store: open sessions.

It lives in the store, not in a process's memory, because several node processes may serve
one PostgreSQL store (DESIGN.md §8) and a restart must not revive a session that was signed
out. The table is bounded by time: a session row goes when it expires or is signed out;
nothing is ever evicted to make room.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import begin_write
from .tables import WebSession

T_SESSION = WebSession.__table__  # type: ignore[attr-defined]


# --- sessions ---------------------------------------------------------------------------------


async def insert_session(
    engine: AsyncEngine, session_hash: str, user_id: str, now: datetime, expires_at: datetime
) -> None:
    """Record a new session; sessions already expired are purged in the same transaction."""
    async with begin_write(engine) as conn:
        await conn.execute(delete(T_SESSION).where(T_SESSION.c.expires_at <= now))
        await conn.execute(
            insert(T_SESSION).values(
                session_hash=session_hash, user_id=user_id, created_at=now, expires_at=expires_at
            )
        )


async def session_is_open(
    engine: AsyncEngine, session_hash: str, user_id: str, now: datetime
) -> bool:
    """Is this session of this user recorded and not yet expired?"""
    query = select(T_SESSION.c.session_hash).where(
        T_SESSION.c.session_hash == session_hash,
        T_SESSION.c.user_id == user_id,
        T_SESSION.c.expires_at > now,
    )
    async with engine.connect() as conn:
        return (await conn.execute(query)).first() is not None


async def delete_session(engine: AsyncEngine, session_hash: str) -> None:
    async with begin_write(engine) as conn:
        await conn.execute(delete(T_SESSION).where(T_SESSION.c.session_hash == session_hash))
