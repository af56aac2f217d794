"""On SQLite the exchange log writes its rows with the ``sqlite3`` driver, bypassing SQLAlchemy.

Those rows must be exactly what SQLAlchemy itself would have written: times as the text a
``UTCDateTime`` column stores (``sqlite_time``), entries that read back through ``query_log``
with the drafted fields and an aware UTC ``at``, a chain that ``verify_chain`` accepts, and
replay-memory rows whose ``expires_at`` reads back as given. Replays are caught within a batch
and across batches. A batch that carries a ``SyncChange`` still runs through SQLAlchemy, and
commits the change with its entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select
from sqlalchemy.ext.asyncio import AsyncEngine

from node.store.engine import create_engine, migrate, sqlite_sync_twin
from node.store.exchange_log import (
    T_SEEN,
    DuplicateMessage,
    ExchangeLog,
    LogDraft,
    LogFilter,
    SeenId,
    SyncChange,
    query_log,
    sqlite_time,
    verify_chain,
)
from node.store.tables import PeerState, RevocationRecord

T = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
CEST = timezone(timedelta(hours=2))
WEST = timezone(-timedelta(hours=5, minutes=30))
PEER = "ifo.test.se"
OTHER_PEER = "bup.test.se"
T_REVOCATION = RevocationRecord.__table__  # type: ignore[attr-defined]
T_PEER_STATE = PeerState.__table__  # type: ignore[attr-defined]


@dataclass
class Store:
    path: Path
    engine: AsyncEngine
    sync: Engine
    log: ExchangeLog
    batches: list[tuple[str, int]]  # (path taken, batch size), as the spies saw them

    def raw(self) -> sqlite3.Connection:
        """A connection of its own: it sees only what was committed."""
        return sqlite3.connect(self.path)


@pytest.fixture
async def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Store]:
    path = tmp_path / "node.db"
    engine = create_engine(f"sqlite:///{path}", create=True)
    await migrate(engine)
    sync = sqlite_sync_twin(engine)
    assert sync is not None
    log = ExchangeLog(engine, lambda: T, sync)
    batches: list[tuple[str, int]] = []
    spy(monkeypatch, log, "_write_on_loop", batches)
    spy(monkeypatch, log, "_write_sync", batches)
    try:
        yield Store(path, engine, sync, log, batches)
    finally:
        await log.close()
        log.close_connection()
        sync.dispose()
        await engine.dispose()


def spy(monkeypatch: pytest.MonkeyPatch, log: ExchangeLog, name: str, seen: list[Any]) -> None:
    real: Callable[..., Any] = getattr(log, name)

    def recording(batch: list[Any], *args: Any, **kwargs: Any) -> Any:
        seen.append((name, len(batch)))
        return real(batch, *args, **kwargs)

    monkeypatch.setattr(log, name, recording)


def draft(n: int, **fields: Any) -> LogDraft:
    return LogDraft(
        direction=fields.pop("direction", "in"),
        peer=fields.pop("peer", PEER),
        message_type=fields.pop("message_type", "fragments.request"),
        message_id=fields.pop("message_id", f"00000000-0000-4000-8000-{n:012d}"),
        outcome=fields.pop("outcome", "released"),
        **fields,
    )


def expected_row(d: LogDraft) -> dict[str, Any]:
    """The columns an entry must read back with, from its draft."""
    return {
        "at": d.at,
        "direction": d.direction,
        "peer": d.peer,
        "message_type": d.message_type,
        "message_id": d.message_id,
        "plan_id": d.plan_id,
        "consent_id": d.consent_id,
        "purpose": d.purpose,
        "professional": d.professional,
        "categories": ",".join(sorted(set(d.categories))),
        "released": d.released,
        "withheld": ",".join(f"{c}:{r}" for c, r in d.withheld),
        "outcome": d.outcome,
        "reason": d.reason,
    }


async def entries(store: Store) -> list[dict[str, Any]]:
    rows = await query_log(store.engine, LogFilter(), limit=1000, newest_first=False)
    for row in rows:
        assert row["at"].tzinfo is not None and row["at"].utcoffset() == timedelta(0)
    return rows


def without_chain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("seq", "prev_hash", "hash")}


async def seen_rows(store: Store) -> dict[tuple[str, str], datetime]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(T_SEEN))).all()
    return {(r.sender, r.message_id): r.expires_at for r in rows}


async def assert_chain_intact(store: Store, entries: int) -> None:
    chain = await verify_chain(store.engine)
    assert chain.problem is None, chain.problem
    assert chain.entries == entries and chain.head_seq == entries


# --- sqlite_time ------------------------------------------------------------------------------


TIMES = [
    pytest.param(datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC), id="microsecond-0"),
    pytest.param(datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=UTC), id="microseconds"),
    pytest.param(datetime(2026, 11, 23, 0, 30, 0, 1, tzinfo=CEST), id="offset-east-day-before"),
    pytest.param(
        datetime(2026, 12, 31, 20, 0, 0, 999999, tzinfo=WEST), id="offset-west-year-after"
    ),
    pytest.param(datetime(1000, 1, 1, 0, 0, 0, tzinfo=UTC), id="year-1000"),
    pytest.param(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), id="year-9999"),
    pytest.param(datetime(5, 6, 7, 8, 9, 10, tzinfo=UTC), id="year-5"),
    pytest.param(datetime(999, 12, 31, 23, 0, 0, 5, tzinfo=UTC), id="year-999"),
]


@pytest.mark.parametrize("when", TIMES)
async def test_sqlite_time_is_the_text_sqlalchemy_stores(store: Store, when: datetime) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            T_SEEN.insert(), [{"sender": PEER, "message_id": "m", "expires_at": when}]
        )
    with contextlib.closing(store.raw()) as raw:
        (stored,) = raw.execute("SELECT expires_at FROM seen_message").fetchone()
    assert isinstance(stored, str)
    assert sqlite_time(when) == stored
    assert (await seen_rows(store))[(PEER, "m")] == when


# --- appends on the raw path ------------------------------------------------------------------


def varied_drafts() -> list[LogDraft]:
    """Drafts using every column, some with ``at`` given in other offsets and microsecond 0."""
    return [
        draft(
            1,
            at=T + timedelta(microseconds=1),
            plan_id="11111111-1111-4111-8111-111111111111",
            consent_id="33333333-3333-4333-8333-333333333333",
            purpose="sip",
            professional=f"{PEER}/u/lead",
            categories=["social", "education", "social"],
            released=2,
            withheld=[("family", "category_not_granted"), ("leisure", "no_fragments")],
        ),
        draft(2, at=T.astimezone(CEST), outcome="withheld", reason="consent_revoked"),
        draft(3, at=(T + timedelta(seconds=1, microseconds=999999)).astimezone(WEST)),
        draft(4, direction="out", peer=OTHER_PEER, message_type="hello", outcome="ok"),
        draft(5, message_type="consent.revoke", outcome="refused", reason="replayed"),
    ]


async def test_concurrent_appends_without_seen_ids_read_back_as_drafted(store: Store) -> None:
    drafts = varied_drafts()
    seqs = await asyncio.gather(*(store.log.append(d) for d in drafts))
    assert sorted(seqs) == [1, 2, 3, 4, 5]
    assert store.batches == [("_write_on_loop", 5)]  # one batch, on the raw path
    assert drafts[3].at == T  # the log's clock stamped the draft without a time

    rows = await entries(store)
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    by_seq = dict(zip(seqs, drafts, strict=True))
    for row in rows:
        assert without_chain(row) == expected_row(by_seq[row["seq"]])
    await assert_chain_intact(store, 5)


async def test_seen_ids_are_remembered_and_replays_refused_within_and_across_batches(
    store: Store,
) -> None:
    expiries = [
        T + timedelta(minutes=1, microseconds=250),
        (T + timedelta(minutes=2)).astimezone(CEST),
        (T + timedelta(minutes=3, microseconds=7)).astimezone(WEST),
    ]
    first = [
        (draft(1), SeenId(PEER, "id-1", expiries[0])),
        (draft(2), SeenId(PEER, "id-2", expiries[1])),
        (draft(3), None),
        (draft(4), SeenId(PEER, "id-1", T + timedelta(hours=9))),  # id-1 again, same batch
        (draft(5, peer=OTHER_PEER), SeenId(OTHER_PEER, "id-1", expiries[2])),  # other sender
    ]
    outcomes = await asyncio.gather(
        *(store.log.append(d, None, s) for d, s in first), return_exceptions=True
    )
    assert store.batches == [("_write_on_loop", 5)]
    assert outcomes[:3] == [1, 2, 3] and outcomes[4] == 5
    assert isinstance(outcomes[3], DuplicateMessage) and str(outcomes[3]) == "id-1"

    # a later batch: a replay of id-2, a fresh id, and an entry without one
    second = [
        (draft(6), SeenId(PEER, "id-2", T + timedelta(hours=9))),
        (draft(7), SeenId(PEER, "id-3", T + timedelta(minutes=4))),
        (draft(8), None),
    ]
    later = await asyncio.gather(
        *(store.log.append(d, None, s) for d, s in second), return_exceptions=True
    )
    assert store.batches[1:] == [("_write_on_loop", 3)]
    assert isinstance(later[0], DuplicateMessage) and later[1:] == [7, 8]
    alone = draft(9)
    with pytest.raises(DuplicateMessage):  # and alone, in a batch of its own
        await store.log.append(alone, None, SeenId(OTHER_PEER, "id-1", T))

    drafted = [d for d, _ in first + second] + [alone]
    for replayed in (drafted[3], drafted[5], alone):  # the log marked them
        assert (replayed.outcome, replayed.reason) == ("refused", "replayed")
    rows = await entries(store)
    assert [r["seq"] for r in rows] == list(range(1, 10))
    for row, d in zip(rows, drafted, strict=True):
        assert without_chain(row) == expected_row(d)
    await assert_chain_intact(store, 9)

    # the first time each id was seen, with the time given then (a replay stores nothing)
    assert await seen_rows(store) == {
        (PEER, "id-1"): expiries[0],
        (PEER, "id-2"): expiries[1],
        (OTHER_PEER, "id-1"): expiries[2],
        (PEER, "id-3"): T + timedelta(minutes=4),
    }


# --- a batch with a SyncChange ----------------------------------------------------------------


def revocation(n: int, revoked_at: datetime) -> SyncChange:
    def apply(conn: Connection) -> None:
        conn.execute(
            T_REVOCATION.insert(),
            [
                {
                    "consent_id": f"33333333-3333-4333-8333-{n:012d}",
                    "plan_id": "11111111-1111-4111-8111-111111111111",
                    "revoked_at": revoked_at,
                    "revoked_by": PEER,
                    "notice_id": f"44444444-4444-4444-8444-{n:012d}",
                    "recorded_at": T,
                }
            ],
        )

    return SyncChange(apply)


def failing_change(conn: Connection) -> None:
    conn.execute(T_PEER_STATE.insert(), [{"node_id": PEER, "revocation_cursor": 7}])
    raise RuntimeError("the change fails after writing")


async def test_a_batch_with_a_sync_change_runs_through_sqlalchemy_and_commits_with_it(
    store: Store,
) -> None:
    revoked_at = datetime(2026, 11, 23, 10, 15, 0, tzinfo=CEST)
    batch = [
        (draft(1, message_type="consent.revoke", outcome="ok"), revocation(1, revoked_at), None),
        (draft(2), None, SeenId(PEER, "id-2", T + timedelta(minutes=1))),
        (draft(3, message_type="consent.revoke", outcome="ok"), SyncChange(failing_change), None),
        # a replay: its change must not run
        (
            draft(4, message_type="consent.revoke", outcome="ok"),
            revocation(4, T),
            SeenId(PEER, "id-2", T),
        ),
    ]
    outcomes = await asyncio.gather(
        *(store.log.append(d, c, s) for d, c, s in batch), return_exceptions=True
    )
    assert store.batches == [("_write_sync", 4)]  # the SQLAlchemy path, not the raw one
    assert outcomes[:2] == [1, 2]
    assert isinstance(outcomes[2], RuntimeError)
    assert isinstance(outcomes[3], DuplicateMessage)

    # committed: another connection sees the change and the entries
    with contextlib.closing(store.raw()) as raw:
        consents = raw.execute("SELECT consent_id, revoked_at FROM revocation").fetchall()
        cursors = raw.execute("SELECT node_id FROM peer_state").fetchall()
        logged = raw.execute(
            "SELECT seq, outcome, reason FROM exchange_log ORDER BY seq"
        ).fetchall()
    assert consents == [("33333333-3333-4333-8333-000000000001", sqlite_time(revoked_at))]
    assert cursors == []  # the failed change was rolled back to its savepoint
    assert logged == [
        (1, "ok", None),
        (2, "released", None),
        (3, "failed", "internal"),
        (4, "refused", "replayed"),
    ]
    async with store.engine.connect() as conn:
        (stored,) = (await conn.execute(select(T_REVOCATION.c.revoked_at))).all()
    assert stored[0] == revoked_at

    rows = await entries(store)
    for row, (d, _, _) in zip(rows, batch, strict=True):
        assert without_chain(row) == expected_row(d)
    await assert_chain_intact(store, 4)
    assert await seen_rows(store) == {(PEER, "id-2"): T + timedelta(minutes=1)}

    # and the next batch without changes takes the raw path, continuing the same chain
    assert await store.log.append(draft(5), None, SeenId(PEER, "id-5", T)) == 5
    assert store.batches[1:] == [("_write_on_loop", 1)]
    await assert_chain_intact(store, 5)
