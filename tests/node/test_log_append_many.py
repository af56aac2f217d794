"""``ExchangeLog.append_many`` (one transaction for an assembly's exchanges), ``close``, and the
on-loop write's handling of SQLite errors that are not "another process is writing"."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from node.store.engine import create_engine, migrate, sqlite_sync_twin
from node.store.exchange_log import ExchangeLog, LogDraft, LogFilter, query_log, sqlite_time

T = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'node.db'}", create=True)
    await migrate(engine)
    yield engine
    await engine.dispose()


def draft(i: int) -> LogDraft:
    return LogDraft(
        direction="out",
        peer=f"p{i}.test.se",
        message_type="fragments.request",
        message_id=str(uuid.UUID(int=i)),
        outcome="ok",
    )


async def test_append_many_writes_one_batch_in_order(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync = sqlite_sync_twin(engine)
    assert sync is not None
    log = ExchangeLog(engine, lambda: T, sync)
    batches: list[int] = []
    write = ExchangeLog._write

    async def counting(self: ExchangeLog, batch: list[Any]) -> Any:
        batches.append(len(batch))
        return await write(self, batch)

    monkeypatch.setattr(ExchangeLog, "_write", counting)
    try:
        await log.append(draft(0))
        seqs = await log.append_many([draft(i) for i in range(1, 9)])
        assert await log.append_many([]) == []
    finally:
        await log.close()
        sync.dispose()
    assert seqs == list(range(2, 10))
    assert batches == [1, 8]
    rows = await query_log(engine, LogFilter(), newest_first=False)
    assert [r["peer"] for r in rows] == [f"p{i}.test.se" for i in range(9)]


async def test_close_releases_the_loop_connection(engine: AsyncEngine) -> None:
    sync = sqlite_sync_twin(engine)
    assert sync is not None
    log = ExchangeLog(engine, lambda: T, sync)
    await log.append(draft(0))
    assert sync.pool.checkedout() == 1  # type: ignore[attr-defined]  # the held connection
    await log.close()
    assert sync.pool.checkedout() == 0  # type: ignore[attr-defined]  # back: dispose closes it
    await log.append(draft(1))  # a log used after close opens a connection again
    await log.close()
    sync.dispose()
    assert [r["seq"] for r in await query_log(engine, LogFilter())] == [2, 1]


async def test_an_error_other_than_busy_is_not_taken_for_another_writer(
    engine: AsyncEngine,
) -> None:
    sync = sqlite_sync_twin(engine)
    assert sync is not None
    log = ExchangeLog(engine, lambda: T, sync)
    raw = log.loop_connection()
    raw.execute("BEGIN")  # a transaction left open on the connection: a bug, not contention
    try:
        with pytest.raises(sqlite3.OperationalError, match="within a transaction"):
            await log.append(draft(0))
    finally:
        raw.execute("ROLLBACK")
        await log.close()
        sync.dispose()


def test_sqlite_time_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        sqlite_time(datetime(2026, 11, 25, 12, 0))
