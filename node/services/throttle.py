"""Login throttling for the web pages: by user id and by client address, kept in the store.

Why both: a limit per user id alone does not slow one password tried against many user ids
(spraying); a limit per address alone lets many addresses guess one user's password. Why in
the store: a limit kept per process is reset by a restart and divided by the number of
processes serving one PostgreSQL store. Counts run in fixed windows that begin at a subject's
first failure; a subject over its limit is refused, its password not even checked, until its
window is over. Nothing but time ends a window (see ``store.web_auth``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from ..store import web_auth

WINDOW_S = 15 * 60
MAX_FAILURES_PER_USER = 10
# several people may sign in from one address (an office's NAT, or every browser when a proxy
# does not pass on client addresses: deploy/CONFIG.md), so an address gets two users' worth
MAX_FAILURES_PER_SOURCE = 20


def subject(kind: str, value: str) -> str:
    """The key a throttle row is kept under: a digest, so the table holds neither what was
    typed as a user id (any text, any length) nor a client's address."""
    return hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest()


@dataclass(frozen=True)
class LoginThrottle:
    """The limits; the counts are in the store, so every app on one store shares them."""

    window_s: int = WINDOW_S
    per_user: int = MAX_FAILURES_PER_USER
    per_source: int = MAX_FAILURES_PER_SOURCE

    async def attempt(
        self,
        engine: AsyncEngine,
        user_id: str,
        source: str,
        now: datetime,
    ) -> bool:
        """Count a login attempt of ``user_id`` from ``source``; False if either is over its
        limit (then check no password). The source is counted first and, once over its limit,
        alone: a locked source cannot add rows for any number of user ids."""
        subjects = [
            (subject("source", source), self.per_source),
            (subject("user", user_id), self.per_user),
        ]
        return await web_auth.count_attempt(
            engine, subjects, now, now - timedelta(seconds=self.window_s)
        )

    async def succeeded(self, engine: AsyncEngine, user_id: str, source: str) -> None:
        """The attempt signed in: it was no failure."""
        await web_auth.attempt_succeeded(
            engine, subject("user", user_id), subject("source", source)
        )
