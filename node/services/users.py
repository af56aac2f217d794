"""Users and their bearer tokens. A token is shown once; only its SHA-256 is stored.

An operator can replace a user's token (a leaked one stops working at once) and disable a user
(someone who left, or whose access is in doubt): a disabled user is kept, so what they did stays
attributed to them, but is refused everywhere until enabled again. ``active`` is the one check
every way in (API token, page login, page session) goes through.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import Conflict, FieldProblem, InvalidInput, NotFound
from ..store import records
from ..store.tables import User

ROLES = ("professional", "lead", "operator")
USER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh bearer token: 256 random bits, prefixed so a leaked one is recognisable."""
    return "bp_" + secrets.token_urlsafe(32)


def active(user: User | None) -> User | None:
    """The user if they may use the node now; None for no user or a disabled one.

    Callers answer both the same way, so nobody outside learns whether a user id exists."""
    return user if user is not None and user.disabled_at is None else None


async def active_user(engine: AsyncEngine, user_id: str) -> User | None:
    """The user ``user_id`` if they exist and are not disabled (a web session's check)."""
    return active(await records.user_by_id(engine, user_id))


def unknown_user(user_id: str) -> NotFound:
    return NotFound(
        f"no user {user_id!r} on this node: 'barnplan users list' shows its users",
        code="no_user",
        params={"user_id": user_id},
    )


async def add_user(
    engine: AsyncEngine,
    user_id: str,
    display_name: str,
    role: str,
    now: datetime,
    provider: tuple[str, str] | None = None,
) -> tuple[User, str]:
    """Create a user and return it with its new bearer token. ``provider``: the (issuer,
    stored subject) they sign in with through the agency's OpenID provider."""
    if role not in ROLES:
        raise InvalidInput(
            f"role must be one of {', '.join(ROLES)}",
            code="unknown_role",
            fields={"role": FieldProblem("unknown_role", "unknown role")},
        )
    if not USER_ID.match(user_id):
        raise InvalidInput(
            "user id: letters, digits, _ and - only (at most 64)",
            code="bad_user_id",
            fields={"user_id": FieldProblem("bad_user_id", "invalid")},
        )
    if not display_name.strip():
        raise InvalidInput(
            "display name must not be empty",
            code="missing",
            fields={"display_name": FieldProblem("missing", "required")},
        )
    if len(display_name.strip()) > 200:  # the column's limit, which reading a user checks
        limit = {"max_length": 200}
        raise InvalidInput(
            "display name: at most 200 characters",
            code="max_length",
            params=limit,
            fields={"display_name": FieldProblem("max_length", "at most 200 characters", limit)},
        )
    token = new_token()
    user = User(
        user_id=user_id,
        display_name=display_name.strip(),
        role=role,
        token_hash=hash_token(token),
        created_at=now,
        oidc_issuer=provider[0] if provider else None,
        oidc_subject=provider[1] if provider else None,
    )
    try:
        await records.insert_user(engine, user)
    except IntegrityError:
        if provider and await records.user_by_subject(engine, *provider) is not None:
            raise Conflict(
                "a user with this --subject at this provider already exists", code="subject_exists"
            ) from None
        raise Conflict(
            f"user {user_id} already exists", code="user_exists", params={"user_id": user_id}
        ) from None
    return user, token


async def replace_token(engine: AsyncEngine, user_id: str) -> tuple[User, str]:
    """Issue a new bearer token for the user; the old one is refused from the next request on
    (its hash is overwritten, and the API looks the hash up on every request)."""
    token = new_token()
    user = await records.update_user(engine, user_id, token_hash=hash_token(token))
    if user is None:
        raise unknown_user(user_id)
    return user, token


async def disable_user(engine: AsyncEngine, user_id: str, now: datetime) -> User:
    """Refuse the user everywhere from their next request on. Disabling a disabled user keeps
    the time it first happened, the one an operator needs to know."""
    user = await records.user_by_id(engine, user_id)
    if user is None:
        raise unknown_user(user_id)
    if user.disabled_at is not None:
        return user
    changed = await records.update_user(engine, user_id, disabled_at=now, sessions_since=now)
    if changed is None:
        raise unknown_user(user_id)
    return changed


async def enable_user(engine: AsyncEngine, user_id: str) -> User:
    """Let a disabled user in again with their existing token and password."""
    user = await records.update_user(engine, user_id, disabled_at=None)
    if user is None:
        raise unknown_user(user_id)
    return user


async def authenticate(engine: AsyncEngine, token: str) -> User | None:
    """The active user holding ``token``; None for an unknown, replaced or disabled one."""
    return active(await records.user_by_token_hash(engine, hash_token(token)))


def professional_ref(node_id: str, user: User) -> str:
    """How a user is named to peers: node-local id, never a personal identity number."""
    return f"{node_id}/u/{user.user_id}"
