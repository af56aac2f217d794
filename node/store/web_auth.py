"""The web pages' sign-in state in the store: open sessions and login-failure counts.

Both live in the store, not in a process's memory, because several node processes may serve
one PostgreSQL store (DESIGN.md §8) and a restart must neither revive a session that was
signed out nor lift a login lock. Both tables are bounded by time: a session row goes when it
expires or is signed out, a throttle row when its window is over; nothing is ever evicted to
make room, so flooding them cannot undo a sign-out or a lock.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .engine import begin_write
from .tables import LoginThrottle, WebSession

T_SESSION = WebSession.__table__  # type: ignore[attr-defined]
T_THROTTLE = LoginThrottle.__table__  # type: ignore[attr-defined]


# --- sessions ---------------------------------------------------------------------------------


async def insert_session(
    engine: AsyncEngine,
    session_hash: str,
    user_id: str,
    now: datetime,
    expires_at: datetime,
    id_token: str | None = None,
    provider_sid: str | None = None,
) -> None:
    """Record a new session; sessions already expired are purged in the same transaction."""
    async with begin_write(engine) as conn:
        await conn.execute(delete(T_SESSION).where(T_SESSION.c.expires_at <= now))
        await conn.execute(
            insert(T_SESSION).values(
                session_hash=session_hash,
                user_id=user_id,
                created_at=now,
                expires_at=expires_at,
                last_seen_at=now,
                oidc_id_token=id_token,
                oidc_sid=provider_sid,
            )
        )


async def session_is_open(
    engine: AsyncEngine, session_hash: str, user_id: str, now: datetime, idle_since: datetime
) -> bool:
    """Is this session of this user recorded, not expired, and used after ``idle_since``?"""
    last_use = func.coalesce(T_SESSION.c.last_seen_at, T_SESSION.c.created_at)
    query = select(T_SESSION.c.session_hash).where(
        T_SESSION.c.session_hash == session_hash,
        T_SESSION.c.user_id == user_id,
        T_SESSION.c.expires_at > now,
        last_use > idle_since,
    )
    async with engine.connect() as conn:
        return (await conn.execute(query)).first() is not None


async def session_seen(
    engine: AsyncEngine, session_hash: str, now: datetime, written_before: datetime
) -> None:
    """Note a request of the session, unless one noted after ``written_before`` is already
    there (so a busy session costs one write a minute, not one per page)."""
    last_use = func.coalesce(T_SESSION.c.last_seen_at, T_SESSION.c.created_at)
    async with begin_write(engine) as conn:
        await conn.execute(
            update(T_SESSION)
            .where(T_SESSION.c.session_hash == session_hash, last_use < written_before)
            .values(last_seen_at=now)
        )


async def session_id_token(engine: AsyncEngine, session_hash: str) -> str | None:
    """The provider's ID token the session was signed in with (for the provider's logout)."""
    query = select(T_SESSION.c.oidc_id_token).where(T_SESSION.c.session_hash == session_hash)
    async with engine.connect() as conn:
        return (await conn.execute(query)).scalar_one_or_none()


async def delete_provider_sessions(
    engine: AsyncEngine, provider_sid: str | None, user_id: str | None
) -> int:
    """Delete the sessions a provider's logout names: those signed in under its session
    ``provider_sid``, or every provider-signed session of ``user_id``. How many went."""
    if provider_sid is not None:
        where = T_SESSION.c.oidc_sid == provider_sid
    elif user_id is not None:
        where = (T_SESSION.c.user_id == user_id) & T_SESSION.c.oidc_id_token.is_not(None)
    else:
        return 0
    async with begin_write(engine) as conn:
        return int((await conn.execute(delete(T_SESSION).where(where))).rowcount or 0)


async def delete_session(engine: AsyncEngine, session_hash: str) -> None:
    async with begin_write(engine) as conn:
        await conn.execute(delete(T_SESSION).where(T_SESSION.c.session_hash == session_hash))


# --- login throttling -------------------------------------------------------------------------


async def count_attempt(
    engine: AsyncEngine,
    subjects: list[tuple[str, int]],
    now: datetime,
    window_start: datetime,
) -> bool:
    """Count one login attempt against each ``(subject, limit)`` in order, in one transaction;
    False (refused) as soon as a subject is over its limit, leaving the later ones untouched.

    The attempt is counted *before* the password is checked (``attempt_succeeded`` takes it
    back), so concurrent attempts, in this process or another, cannot all pass the check
    before any of them is counted. A window that began at ``window_start`` or earlier is over:
    its rows are purged and a subject's count starts again at this attempt. A subject already
    at its limit is refused by a read alone (an indexed read), so a flood from a locked source
    costs little and never queues for the store's write lock (on SQLite the one every
    exchange-log append needs)."""
    async with engine.connect() as conn:
        at_limit = await conn.run_sync(_at_limit, dict(subjects), window_start)
    if at_limit:
        return False
    async with begin_write(engine) as conn:
        await conn.execute(delete(T_THROTTLE).where(T_THROTTLE.c.window_start <= window_start))
        for subject, limit in subjects:
            if await _count(conn, subject, now) > limit:
                return False
    return True


def _at_limit(conn: Connection, limits: dict[str, int], window_start: datetime) -> bool:
    """Has any subject already used up its limit in a window that is still running?"""
    query = select(T_THROTTLE.c.subject, T_THROTTLE.c.failures).where(
        T_THROTTLE.c.subject.in_(list(limits)), T_THROTTLE.c.window_start > window_start
    )
    rows = conn.execute(query).all()
    return any(failures >= limits[subject] for subject, failures in rows)


async def _count(conn: AsyncConnection, subject: str, now: datetime) -> int:
    """Add one failure to ``subject`` (a new window if it has none) and return its count."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(T_THROTTLE).values(subject=subject, window_start=now, failures=1)
    statement = statement.on_conflict_do_update(
        index_elements=[T_THROTTLE.c.subject],
        set_={"failures": T_THROTTLE.c.failures + 1},
    ).returning(T_THROTTLE.c.failures)
    return int((await conn.execute(statement)).scalar_one())


async def attempt_succeeded(engine: AsyncEngine, user_subject: str, source_subject: str) -> None:
    """A signed-in user: their failures are forgotten, and the source's count of this attempt
    is taken back (its earlier failures stand, so signing in to one's own account between
    guesses does not reset a source)."""
    async with begin_write(engine) as conn:
        await conn.execute(delete(T_THROTTLE).where(T_THROTTLE.c.subject == user_subject))
        await conn.execute(
            update(T_THROTTLE)
            .where(T_THROTTLE.c.subject == source_subject)
            .values(failures=case((T_THROTTLE.c.failures > 0, T_THROTTLE.c.failures - 1), else_=0))
        )
