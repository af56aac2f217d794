"""The exchange log's WAL checkpoints run in a worker thread, not on the event loop.

Log batches commit on the event loop thread (``ExchangeLog._write_on_loop``), so the synchronous
twin's connections have SQLite's automatic checkpoint turned off, and the log starts a passive
checkpoint in a thread every ``CHECKPOINT_EVERY`` commits. Without those checkpoints the WAL file
would grow with every entry; with them it stays bounded.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from node.store import exchange_log as xl
from node.store.engine import create_engine, migrate, sqlite_sync_twin, write_lock
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


async def append_one_by_one(log: ExchangeLog, n: int) -> None:
    for i in range(n):  # one commit each: the worst case for the WAL
        seen = SeenId("skola.test.se", str(uuid.UUID(int=i)), T)
        await log.append(draft(i), seen=seen)


def wal_bytes(tmp_path: Path) -> int:
    wal = tmp_path / "node.db-wal"
    return wal.stat().st_size if wal.exists() else 0


async def test_twin_connections_do_not_checkpoint_on_their_own(engine: AsyncEngine) -> None:
    sync = sqlite_sync_twin(engine)
    assert sync is not None
    try:
        log = ExchangeLog(engine, lambda: T, sync)
        assert log.loop_connection().execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        with sync.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        async with engine.connect() as conn:  # other connections keep SQLite's default
            assert (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() == 1000
        log.close_connection()
    finally:
        sync.dispose()


@pytest.mark.parametrize("checkpoints", [True, False])
async def test_the_wal_stays_bounded_by_the_logs_own_checkpoints(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checkpoints: bool
) -> None:
    if not checkpoints:  # the counterfactual: what the WAL does without them
        monkeypatch.setattr(xl, "CHECKPOINT_EVERY", 10**9)
    sync = sqlite_sync_twin(engine)
    assert sync is not None
    log = ExchangeLog(engine, lambda: T, sync)
    try:
        await append_one_by_one(log, 1500)
        await log.close()  # waits for a checkpoint still running
        size = wal_bytes(tmp_path)
        if checkpoints:
            # ~7 pages per commit: 1,500 commits unchecked would be ~40 MB
            assert size < 8 * 1024 * 1024, size
        else:
            assert size > 16 * 1024 * 1024, size
        assert (await verify_chain(engine)).problem is None
    finally:
        log.close_connection()
        sync.dispose()


async def test_checkpoints_hold_the_writers_and_never_overlap(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync = sqlite_sync_twin(engine)
    assert sync is not None
    monkeypatch.setattr(xl, "CHECKPOINT_EVERY", 5)
    running = 0
    most = 0
    calls = 0
    locked_during: list[bool] = []
    original = ExchangeLog._checkpoint

    def slow_checkpoint(self: ExchangeLog) -> None:
        nonlocal running, most, calls
        running += 1
        calls += 1
        most = max(most, running)
        locked_during.append(loop_lock.locked())  # this thread only reads whether it is taken
        try:
            time.sleep(0.02)  # a slow checkpoint on purpose: writers must wait it out
            original(self)
        finally:
            running -= 1

    loop_lock = write_lock(engine)  # the one the log takes on this event loop
    assert loop_lock is not None
    log = ExchangeLog(engine, lambda: T, sync)
    try:
        monkeypatch.setattr(ExchangeLog, "_checkpoint", slow_checkpoint)
        # concurrent appends: while a checkpoint holds the writers, the next batch grows
        await asyncio.gather(
            *(
                log.append(draft(i), seen=SeenId("skola.test.se", str(uuid.UUID(int=i)), T))
                for i in range(200)
            )
        )
        await append_one_by_one_from(log, 200, 40)
        await log.close()
    finally:
        log.close_connection()
        sync.dispose()
    assert most == 1
    assert calls >= 1
    assert all(locked_during)
    assert (await verify_chain(engine)).problem is None


async def append_one_by_one_from(log: ExchangeLog, start: int, n: int) -> None:
    for i in range(start, start + n):
        await log.append(draft(i), seen=SeenId("skola.test.se", str(uuid.UUID(int=i)), T))
