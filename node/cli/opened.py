"""Opening a node from its directory for one CLI command, and naming the acting user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from ..config import load_config
from ..errors import Forbidden, NotFound
from ..runtime import Node, open_node
from ..store.records import user_by_id
from ..store.tables import User


@asynccontextmanager
async def opened_node(directory: Path) -> AsyncIterator[Node]:
    node = await open_node(load_config(directory))
    try:
        yield node
    finally:
        await node.close()


async def acting_user(node: Node, user_id: str) -> User:
    """The user a CLI command acts as (``--as``); the CLI runs with the node's own authority,
    but never in the name of a disabled user, who is refused on every other way in too."""
    user = await user_by_id(node.engine, user_id)
    if user is None:
        raise NotFound(f"no user {user_id!r}: add one with 'barnplan users add'")
    if user.disabled_at is not None:
        raise Forbidden(
            f"user {user_id!r} is disabled: act as another user, or enable them with "
            f"'barnplan users enable {user_id}'"
        )
    return user
