"""The exchange log on SQLite: append throughput with group commit, and verifying a long chain.

``log_append_per_s``: 64 concurrent callers append through ``ExchangeLog.append``, which batches
whatever is queued into one transaction (head read under the write lock, rows hashed and chained,
one multi-row insert, one commit). The baseline appends the same rows with a commit per row
through the same engine: a write transaction per entry that reads the head and inserts the row,
the callers taking turns (one writer at a time, as SQLite allows). Blocks of both alternate on one
database and one chain, which is verified afterwards as a guard.

``log_verify_1m_s``: ``verify_chain`` (what ``barnplan log verify`` and ``verify_log`` run)
walks 1,000,000 entries in seq order, recomputing every hash and link, with its defaults: the
rows are read through the store's engine in batches, one seq range per core at once (the first
in this process, each batch walked in a worker thread, the others in child processes with an
engine of their own; see ``node.store.chain_verify``).
The chain is built before the clock starts with ``draft_row`` (the product's own hashing and
chaining) and bulk inserted with SQLAlchemy Core in batches; building it is not timed. The
entries are realistic: a mix of fragments requests in and out with categories and withheld
reasons, revocation notices and refusals. ``--quick`` uses 100,000 entries.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from node.store.chain_verify import default_parts
from node.store.engine import begin_write, create_engine, migrate
from node.store.exchange_log import GENESIS, ExchangeLog, LogDraft, draft_row, verify_chain
from node.store.tables import ExchangeLogEntry

from .harness import BenchmarkError, Figure, RunConfig

CALLERS = 64
BUILD_BATCH = 20_000
GOAL_VERIFY_S = 10.0
T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
PEERS = [f"p{i:02d}.bench.se" for i in range(24)]


def drafts(seed: int = 0) -> Iterator[LogDraft]:
    """An endless, deterministic mix of realistic entries (the shapes nodes actually log)."""
    plan_ids = [str(uuid.UUID(int=seed * 1000 + i)) for i in range(50)]
    i = 0
    while True:
        peer = PEERS[i % len(PEERS)]
        plan = plan_ids[i % len(plan_ids)]
        kind = i % 10
        if kind < 6:
            released = i % 3
            yield LogDraft(
                direction="in" if kind % 2 else "out",
                peer=peer,
                message_type="fragments.request",
                message_id=str(uuid.UUID(int=(seed << 64) + i)),
                outcome="released" if released else "withheld",
                reason=None if released else "category_not_granted",
                plan_id=plan,
                consent_id=plan,
                purpose="sip",
                professional=f"{peer}/u/handlaggare_{i % 7}",
                categories=["education", "health"][: 1 + i % 2],
                released=released,
                withheld=[] if released else [("health", "category_not_granted")],
            )
        elif kind < 8:
            yield LogDraft(
                direction="out",
                peer=peer,
                message_type="consent.revoke",
                message_id=str(uuid.UUID(int=(seed << 64) + i)),
                outcome="ok",
                plan_id=plan,
                consent_id=plan,
                professional=f"{peer}/u/lead",
            )
        else:
            yield LogDraft(
                direction="in",
                peer=peer,
                message_type="hello" if kind == 8 else "fragments.request",
                message_id=str(uuid.UUID(int=(seed << 64) + i)),
                outcome="ok" if kind == 8 else "refused",
                reason=None if kind == 8 else "replayed",
            )
        i += 1


async def fresh_engine(path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite:///{path}", create=True)
    await migrate(engine)
    return engine


async def append_group(log: ExchangeLog, source: Iterator[LogDraft], count: int) -> float:
    """Appends per second with ``CALLERS`` concurrent callers through group commit."""
    batch = [next(source) for _ in range(count)]
    pending = iter(batch)

    async def caller() -> None:
        for draft in pending:
            await log.append(draft)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    return count / (time.perf_counter() - started)


async def append_commit_per_row(
    engine: AsyncEngine, source: Iterator[LogDraft], count: int
) -> float:
    """Appends per second, one write transaction (head read + insert + commit) per row, the
    ``CALLERS`` concurrent callers taking turns as SQLite's single writer requires."""
    table = ExchangeLogEntry.__table__  # type: ignore[attr-defined]
    batch = [next(source) for _ in range(count)]
    pending = iter(batch)
    turn = asyncio.Lock()

    async def caller() -> None:
        for draft in pending:
            draft.at = datetime.now(UTC)
            async with turn, begin_write(engine) as conn:
                head = (
                    await conn.execute(
                        text("SELECT seq, hash FROM exchange_log ORDER BY seq DESC LIMIT 1")
                    )
                ).first()
                seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS)
                await conn.execute(table.insert(), [draft_row(draft, seq + 1, prev, draft.at)])

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    return count / (time.perf_counter() - started)


async def measure_appends(config: RunConfig, base: Path) -> tuple[float, float, float, int]:
    group_block = config.pick(full=4000, quick=300)
    row_block = config.pick(full=600, quick=60)
    repeats = config.pick(full=5, quick=2)
    engine = await fresh_engine(base / "appends.db")
    log = ExchangeLog(engine, lambda: datetime.now(UTC))
    source = drafts(1)
    group: list[float] = []
    row: list[float] = []
    try:
        await append_group(log, source, group_block // 4)  # warm-up
        await append_commit_per_row(engine, source, row_block // 4)
        for repeat in range(repeats):
            if repeat % 2 == 0:
                group.append(await append_group(log, source, group_block))
                row.append(await append_commit_per_row(engine, source, row_block))
            else:
                row.append(await append_commit_per_row(engine, source, row_block))
                group.append(await append_group(log, source, group_block))
        await log.close()
        chain = await verify_chain(engine)
        if chain.problem is not None:
            raise BenchmarkError(f"the appended chain does not verify: {chain.problem}")
    finally:
        await engine.dispose()
    ratio = statistics.median(g / r for g, r in zip(group, row, strict=True))
    return statistics.median(group), statistics.median(row), ratio, repeats


async def build_chain(engine: AsyncEngine, entries: int) -> None:
    """``entries`` chained rows, hashed by ``draft_row``, bulk inserted in batches (untimed)."""
    table = ExchangeLogEntry.__table__  # type: ignore[attr-defined]
    source = drafts(2)
    prev, seq = GENESIS, 0
    while seq < entries:
        rows = []
        for _ in range(min(BUILD_BATCH, entries - seq)):
            seq += 1
            row = draft_row(next(source), seq, prev, T0 + timedelta(milliseconds=seq * 37))
            prev = row["hash"]
            rows.append(row)
        async with begin_write(engine) as conn:
            await conn.execute(table.insert(), rows)


async def measure_verify(config: RunConfig, base: Path) -> tuple[float, int, float]:
    entries = config.pick(full=1_000_000, quick=100_000)
    engine = await fresh_engine(base / "chain.db")
    try:
        started = time.perf_counter()
        await build_chain(engine, entries)
        built_s = time.perf_counter() - started
        started = time.perf_counter()
        result = await verify_chain(engine)
        verify_s = time.perf_counter() - started
    finally:
        await engine.dispose()
    if result.problem is not None or result.entries != entries:
        raise BenchmarkError(f"built chain did not verify: {result.problem} ({result.entries})")
    return verify_s, entries, built_s


async def measure(config: RunConfig, base: Path) -> list[Figure]:
    group, row, ratio, repeats = await measure_appends(config, base)
    verify_s, entries, built_s = await measure_verify(config, base)
    per_entry_us = verify_s / entries * 1e6
    return [
        Figure(
            name="log_append_per_s",
            value=group,
            unit="entries/s",
            description=(
                f"ExchangeLog.append with {CALLERS} concurrent callers on SQLite (WAL, "
                f"synchronous=NORMAL), group commit; median of {repeats} blocks interleaved "
                "with the commit-per-row baseline"
            ),
        ),
        Figure(
            name="log_append_commit_per_row_per_s",
            value=row,
            unit="entries/s",
            description=(
                "the same entries appended with one write transaction (head read, insert, "
                "commit) per row through the same engine, callers taking turns"
            ),
        ),
        Figure(
            name="log_append_vs_commit_per_row",
            value=ratio,
            unit="ratio",
            description=(
                "group-commit appends per second over commit-per-row appends per second "
                "(median of per-repeat ratios)"
            ),
        ),
        Figure(
            name="log_verify_1m_s",
            value=verify_s * 1_000_000 / entries,
            unit="s",
            description=(
                f"verify_chain over {entries:,} SQLite entries (recompute every hash and link) "
                f"in {default_parts(entries)} seq range(s) at once, "
                + (
                    "measured directly"
                    if entries == 1_000_000
                    else f"scaled linearly from {verify_s:.2f} s"
                )
                + f": {per_entry_us:.1f} µs per entry; building the chain took {built_s:.0f} s "
                "(untimed)"
            ),
            goal="an operator verifies a million-entry log in well under a coffee break",
            threshold=GOAL_VERIFY_S,
            higher_is_better=False,
        ),
    ]


def run(config: RunConfig) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
        return asyncio.run(measure(config, Path(tmp)))
