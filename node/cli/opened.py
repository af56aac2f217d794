"""Opening a node from its directory for one CLI command, and naming the acting user."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import select

from ..config import load_config
from ..runtime import Node, open_node
from ..services.errors import NotFound
from ..store.records import T_USER
from ..store.tables import User


@asynccontextmanager
async def opened_node(directory: Path) -> AsyncIterator[Node]:
    node = await open_node(load_config(directory))
    try:
        yield node
    finally:
        await node.close()


async def acting_user(node: Node, user_id: str) -> User:
    """The user a CLI command acts as (``--as``); the CLI runs with the node's own authority."""
    async with node.engine.connect() as conn:
        row = (
            (await conn.execute(select(T_USER).where(T_USER.c.user_id == user_id)))
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound(f"no user {user_id!r}: add one with 'barnplan users add'")
    return User.model_validate(dict(row))
