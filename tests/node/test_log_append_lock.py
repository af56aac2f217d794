"""On SQLite an exchange-log append waits for another process's write lock (a CLI command
writing the same file) without blocking the event loop: the node keeps serving meanwhile, and
the chain it writes stays one chain."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine as create_sync_engine

from node.store.engine import create_engine, migrate
from node.store.exchange_log import ExchangeLog, LogDraft, verify_chain

T = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)


def draft(n: int) -> LogDraft:
    return LogDraft(
        direction="in",
        peer="ifo.test.se",
        message_type="hello",
        message_id=f"00000000-0000-4000-8000-{n:012d}",
        outcome="ok",
    )


async def test_an_append_waits_out_another_writer_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "node.db"
    engine = create_engine(f"sqlite:///{path}", create=True)
    await migrate(engine)
    log = ExchangeLog(engine, lambda: T)
    other = create_sync_engine(f"sqlite:///{path}")  # "another process" writing
    try:
        assert await log.append(draft(1)) == 1

        with other.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            waiting = asyncio.create_task(log.append(draft(2)))
            for _ in range(20):  # the loop keeps turning while the append waits for the lock
                await asyncio.sleep(0.01)
            assert not waiting.done()
            conn.rollback()
        assert await asyncio.wait_for(waiting, timeout=30) == 2

        assert await log.append(draft(3)) == 3
        chain = await verify_chain(engine)
        assert chain.problem is None and chain.entries == 3
    finally:
        other.dispose()
        await log.close()
        await engine.dispose()
