"""``ExchangeLog.append_many`` (one transaction for an assembly's exchanges) and ``close``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from node.store.engine import create_engine, migrate
from node.store.exchange_log import ExchangeLog, LogDraft, LogFilter, query_log

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
    log = ExchangeLog(engine, lambda: T)
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
    assert seqs == list(range(2, 10))
    assert batches == [1, 8]
    rows = await query_log(engine, LogFilter(), newest_first=False)
    assert [r["peer"] for r in rows] == [f"p{i}.test.se" for i in range(9)]


async def test_a_log_used_after_close_appends_again(engine: AsyncEngine) -> None:
    log = ExchangeLog(engine, lambda: T)
    await log.append(draft(0))
    await log.close()
    await log.append(draft(1))
    await log.close()
    assert [r["seq"] for r in await query_log(engine, LogFilter())] == [2, 1]
