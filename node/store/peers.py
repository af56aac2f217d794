"""Queries for trusted peers and this node's own keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .engine import begin_write
from .tables import OwnKey, Peer


async def list_peers(engine: AsyncEngine) -> list[Peer]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(Peer).order_by(Peer.node_id))).mappings().all()
    return [Peer.model_validate(dict(r)) for r in rows]


async def get_peer(engine: AsyncEngine, node_id: str) -> Peer | None:
    async with engine.connect() as conn:
        row = (
            (await conn.execute(select(Peer).where(Peer.node_id == node_id)))  # type: ignore[arg-type]
            .mappings()
            .first()
        )
    return Peer.model_validate(dict(row)) if row else None


async def upsert_peer(engine: AsyncEngine, peer: Peer) -> None:
    """Insert or replace a peer's record (re-adding refreshes its document and keys)."""
    async with begin_write(engine) as conn:
        await conn.execute(Peer.__table__.delete().where(Peer.__table__.c.node_id == peer.node_id))  # type: ignore[attr-defined]
        await conn.execute(Peer.__table__.insert().values(**peer.model_dump()))  # type: ignore[attr-defined]


async def peer_ids(conn: AsyncConnection) -> list[str]:
    """Every trusted peer's id, in the caller's transaction (a key change announces to all)."""
    table = Peer.__table__  # type: ignore[attr-defined]
    rows = await conn.execute(select(table.c.node_id).order_by(table.c.node_id))
    return [r[0] for r in rows]


async def peer_for_update(conn: AsyncConnection, node_id: str) -> Peer | None:
    """The peer's row, locked until the caller's transaction ends (PostgreSQL; SQLite's write
    transaction already excludes other writers), so two processes judge one change in turn."""
    table = Peer.__table__  # type: ignore[attr-defined]
    query = select(table).where(table.c.node_id == node_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).mappings().first()
    return Peer.model_validate(dict(row)) if row else None


async def replace_document(conn: AsyncConnection, peer: Peer) -> None:
    """Hold a changed node document for a trusted peer (its keys, URL and names with it)."""
    table = Peer.__table__  # type: ignore[attr-defined]
    await conn.execute(
        table.update()
        .where(table.c.node_id == peer.node_id)
        .values(
            document=peer.document,
            base_url=peer.base_url,
            agency_name=peer.agency_name,
            agency_kind=peer.agency_kind,
            fingerprint=peer.fingerprint,
        )
    )


async def touch_peer(engine: AsyncEngine, node_id: str, when: datetime) -> None:
    async with begin_write(engine) as conn:
        await conn.execute(
            update(Peer).where(Peer.node_id == node_id).values(last_contact_at=when)  # type: ignore[arg-type]
        )


async def own_keys(engine: AsyncEngine) -> list[OwnKey]:
    """This node's keys, oldest first, without their introductions: the columns every
    revision of the store has, so ``keys list`` reads a store a new release has not migrated."""
    table = OwnKey.__table__  # type: ignore[attr-defined]
    columns = [c for c in table.c if c.name != "introduction"]
    async with engine.connect() as conn:
        rows = (await conn.execute(select(*columns).order_by(table.c.valid_from))).mappings()
        return [OwnKey.model_validate(dict(r)) for r in rows.all()]


async def current_introduction(engine: AsyncEngine) -> str | None:
    """The key change document that introduced the current key (migration 0011), if any."""
    table = OwnKey.__table__  # type: ignore[attr-defined]
    query = select(table.c.introduction).where(table.c.valid_until.is_(None))
    async with engine.connect() as conn:
        found = (await conn.execute(query)).first()
    return found[0] if found else None


async def insert_own_key(conn: AsyncConnection, key: OwnKey) -> None:
    """Add ``key`` in the caller's transaction (``init`` makes the store and its key in one)."""
    await conn.execute(OwnKey.__table__.insert().values(**key.model_dump()))  # type: ignore[attr-defined]


async def delete_peer(engine: AsyncEngine, node_id: str) -> bool:
    table = Peer.__table__  # type: ignore[attr-defined]
    async with begin_write(engine) as conn:
        result = await conn.execute(table.delete().where(table.c.node_id == node_id))
    return bool(result.rowcount)
