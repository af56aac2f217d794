"""Where this node is in each peer's catch-up lists (``peer_state``): one cursor per list.

Revocations (SPEC §7.6) and closures (§7.11) are paged the same way, each with its own cursor
column, so both read and move their cursor through these two functions."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select, update
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
    """Move that list's cursor for ``peer`` (making the peer's row if it has none yet)."""
    updated = await conn.execute(
        update(T_PEER_STATE).where(T_PEER_STATE.c.node_id == peer).values({column: cursor})
    )
    if not updated.rowcount:
        fresh = {"revocation_cursor": 0, "closure_cursor": 0, column: cursor}
        await conn.execute(T_PEER_STATE.insert().values({"node_id": peer, **fresh}))
