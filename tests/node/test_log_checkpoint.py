"""The WAL file stays bounded while the exchange log appends: the store's connections keep
SQLite's automatic checkpoint, so a long run of commits never grows the WAL without end."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from node.store.engine import create_engine, migrate
from node.store.exchange_log import ExchangeLog, LogDraft, SeenId, verify_chain

T = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'node.db'}", create=True)
    await migrate(engine)
    yield engine
    await engine.dispose()


def draft(i: int) -> LogDraft:
    return LogDraft(
        direction="in",
        peer="skola.test.se",
        message_type="fragments.request",
        message_id=str(uuid.UUID(int=i)),
        outcome="released",
        plan_id=str(uuid.UUID(int=10**6 + i)),
        categories=["education"],
        released=1,
    )


def wal_bytes(tmp_path: Path) -> int:
    wal = tmp_path / "node.db-wal"
    return wal.stat().st_size if wal.exists() else 0


async def test_the_store_s_connections_checkpoint_on_their_own(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() == 1000


async def test_the_wal_stays_bounded_while_the_log_appends(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    log = ExchangeLog(engine, lambda: T)
    try:
        for i in range(1500):  # one commit each: the worst case for the WAL
            seen = SeenId("skola.test.se", str(uuid.UUID(int=i)), T)
            await log.append(draft(i), seen=seen)
    finally:
        await log.close()
    # ~7 pages per commit: 1,500 commits unchecked would be ~40 MB
    assert wal_bytes(tmp_path) < 8 * 1024 * 1024, wal_bytes(tmp_path)
    assert (await verify_chain(engine)).problem is None
