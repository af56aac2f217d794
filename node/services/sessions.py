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


async def open_session(engine: AsyncEngine, user_id: str, now: datetime, max_age_s: int) -> str:
    """Record a new session of ``user_id`` lasting ``max_age_s``; return its id (for the cookie
    only: the store keeps its digest, so a copy of the store cannot be used to sign in)."""
    session_id = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=max_age_s)
    await web_auth.insert_session(engine, _digest(session_id), user_id, now, expires_at)
    return session_id


async def is_open(engine: AsyncEngine, session_id: str, user_id: str, now: datetime) -> bool:
    """Is ``session_id`` a session of ``user_id`` that has not been signed out or expired?"""
    return await web_auth.session_is_open(engine, _digest(session_id), user_id, now)


async def end_session(engine: AsyncEngine, session_id: str) -> None:
    """Sign this session out everywhere: the next request carrying its cookie is refused."""
    await web_auth.delete_session(engine, _digest(session_id))
