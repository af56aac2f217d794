"""Web sessions that end when the user signs out, on the server, not only in the browser.

The session cookie is encrypted and authenticated, but a cookie alone cannot be taken back: a
copy made before signing out (a shared computer, a proxy's log, malware) would stay valid until
it expires. So each session also has a row in the store, keyed by a digest of a random id that
only the cookie holds; every page request checks the row and signing out deletes it. Only that
session ends: the user's sessions in other browsers go on. (A new password or disabling the
user ends all of them, through the stamp in ``passwords.session_stamp``.)
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from ..store import web_auth


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


SEEN_WRITE_INTERVAL = timedelta(minutes=1)  # how stale a session's stored last request may be


async def open_session(
    engine: AsyncEngine,
    user_id: str,
    now: datetime,
    max_age_s: int,
    id_token: str | None = None,
    provider_sid: str | None = None,
) -> str:
    """Record a new session of ``user_id`` lasting ``max_age_s``; return its id (for the cookie
    only: the store keeps its digest, so a copy of the store cannot be used to sign in).
    ``id_token`` and ``provider_sid``: the provider's, for a session signed in through it (its
    logout needs the token back; its back-channel logout names the sid)."""
    session_id = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=max_age_s)
    await web_auth.insert_session(
        engine, _digest(session_id), user_id, now, expires_at, id_token, provider_sid
    )
    return session_id


async def is_open(
    engine: AsyncEngine, session_id: str, user_id: str, now: datetime, idle_timeout_s: int
) -> bool:
    """Is ``session_id`` a session of ``user_id`` that has not been signed out, expired or
    left unused for ``idle_timeout_s``? An open session's use is noted (at most once a
    minute), so it stays open while it is used."""
    digest = _digest(session_id)
    idle_since = now - timedelta(seconds=idle_timeout_s)
    if not await web_auth.session_is_open(engine, digest, user_id, now, idle_since):
        return False
    await web_auth.session_seen(engine, digest, now, now - SEEN_WRITE_INTERVAL)
    return True


async def provider_id_token(engine: AsyncEngine, session_id: str) -> str | None:
    """The provider's ID token of a session signed in through it; None otherwise."""
    return await web_auth.session_id_token(engine, _digest(session_id))


async def end_session(engine: AsyncEngine, session_id: str) -> None:
    """Sign this session out everywhere: the next request carrying its cookie is refused."""
    await web_auth.delete_session(engine, _digest(session_id))


async def end_provider_sessions(
    engine: AsyncEngine, provider_sid: str | None, user_id: str | None
) -> int:
    """The provider says a person signed out there: end the sessions it names (its session
    ``provider_sid``, or all of ``user_id``'s sessions that came from it)."""
    return await web_auth.delete_provider_sessions(engine, provider_sid, user_id)
