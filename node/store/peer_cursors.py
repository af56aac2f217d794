"""Where this node is in each peer's catch-up lists (``peer_state``): one cursor per list.

Revocations (SPEC §7.6) and closures (§7.11) are paged the same way, each with its own cursor
column, so both read and move their cursor through these two functions."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import PeerState

T_PEER_STATE = PeerState.__table__  # type: ignore[attr-defined]
CursorColumn = Literal["revocation_cursor", "closure_cursor"]


async def get_cursor(conn: AsyncConnection, peer: str, column: CursorColumn) -> int:
    """The cursor to send ``peer`` next for that list (0 before the first page)."""
    row = (
        await conn.execute(select(T_PEER_STATE.c[column]).where(T_PEER_STATE.c.node_id == peer))
    ).first()
    return int(row[0]) if row else 0


async def set_cursor(conn: AsyncConnection, peer: str, column: CursorColumn, cursor: int) -> None:
    """Move that list's cursor for ``peer`` (making the peer's row if it has none yet), in one
    statement: on PostgreSQL the two catch-ups of one peer run at once, and an update that
    found no row followed by an insert let both insert (a duplicate key)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    fresh = {"revocation_cursor": 0, "closure_cursor": 0, column: cursor}
    statement = dialect.insert(T_PEER_STATE).values({"node_id": peer, **fresh})
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[T_PEER_STATE.c.node_id], set_={column: cursor}
        )
    )
