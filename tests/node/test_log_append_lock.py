"""On SQLite the exchange log writes a batch on the event loop when the write lock is free, and
waits for another process's write lock (a CLI command writing the same file) in a worker thread,
so the node keeps serving meanwhile. Both paths write the same chain."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from node.store.engine import create_engine, migrate, sqlite_sync_twin
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
    sync = sqlite_sync_twin(engine)
    assert sync is not None
    log = ExchangeLog(engine, lambda: T, sync)
    try:
        assert await log.append(draft(1)) == 1  # lock free: written on the loop

        other = sqlite3.connect(path, isolation_level=None)  # "another process" writing
        other.execute("BEGIN IMMEDIATE")
        waiting = asyncio.create_task(log.append(draft(2)))
        for _ in range(20):  # the loop keeps turning while the append waits for the lock
            await asyncio.sleep(0.01)
        assert not waiting.done()  # (waiting on the loop would have failed it after busy_timeout)
        other.execute("ROLLBACK")
        other.close()
        assert await asyncio.wait_for(waiting, timeout=30) == 2

        assert await log.append(draft(3)) == 3
        chain = await verify_chain(engine)
        assert chain.problem is None and chain.entries == 3
    finally:
        await log.close()
        sync.dispose()
        await engine.dispose()
