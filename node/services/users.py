"""Users and their bearer tokens. A token is shown once; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..store import records
from ..store.tables import User
from .errors import Conflict, InvalidInput

ROLES = ("professional", "lead", "operator")
USER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def add_user(
    engine: AsyncEngine, user_id: str, display_name: str, role: str, now: datetime
) -> tuple[User, str]:
    """Create a user and return it with its new bearer token."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", {"role": "unknown role"})
    if not USER_ID.match(user_id):
        raise InvalidInput(
            "user id: letters, digits, _ and - only (at most 64)", {"user_id": "invalid"}
        )
    if not display_name.strip():
        raise InvalidInput("display name must not be empty", {"display_name": "required"})
    token = "bp_" + secrets.token_urlsafe(32)
    user = User(
        user_id=user_id,
        display_name=display_name.strip(),
        role=role,
        token_hash=hash_token(token),
        created_at=now,
    )
    try:
        await records.insert_user(engine, user)
    except IntegrityError:
        raise Conflict(f"user {user_id} already exists") from None
    return user, token


async def authenticate(engine: AsyncEngine, token: str) -> User | None:
    return await records.user_by_token_hash(engine, hash_token(token))


def professional_ref(node_id: str, user: User) -> str:
    """How a user is named to peers: node-local id, never a personal identity number."""
    return f"{node_id}/u/{user.user_id}"
