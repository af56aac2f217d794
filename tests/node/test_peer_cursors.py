"""The catch-up cursors kept per peer, on SQLite and PostgreSQL (the latter slow): the two
catch-ups of one peer (revocations, closures) may move their cursors at once, even before the
peer has a row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from node.store.engine import begin_write, create_engine, migrate
from node.store.peer_cursors import get_cursor, set_cursor

PEER = "polis.test.se"


@pytest.fixture
async def engine(store_target: tuple[str, str]) -> AsyncIterator[AsyncEngine]:
    url, schema = store_target
    engine = create_engine(url, schema, create=True)
    await migrate(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_both_cursors_of_a_new_peer_move_at_once(engine: AsyncEngine) -> None:
    """One transaction makes the peer's row and has not committed when the other moves its
    cursor (on PostgreSQL the second waits on the row's key, then updates it; an update that
    found no row followed by an insert failed there with a duplicate key)."""

    async def closures() -> None:
        async with begin_write(engine) as conn:
            await set_cursor(conn, PEER, "closure_cursor", 7)

    async with begin_write(engine) as conn:
        await set_cursor(conn, PEER, "revocation_cursor", 3)
        other = asyncio.ensure_future(closures())
        await asyncio.sleep(0.3)  # the other is under way (PostgreSQL) or queued (SQLite)
    await other
    async with engine.connect() as conn:
        cursors = [await get_cursor(conn, PEER, c) for c in ("revocation_cursor", "closure_cursor")]
    assert cursors == [3, 7]

    async with begin_write(engine) as conn:  # and an existing row moves one column only
        await set_cursor(conn, PEER, "revocation_cursor", 9)
    async with engine.connect() as conn:
        cursors = [await get_cursor(conn, PEER, c) for c in ("revocation_cursor", "closure_cursor")]
    assert cursors == [9, 7]
