"""The exchange log's group commit: concurrent appends go into one transaction, on SQLite and
PostgreSQL alike, and read back exactly as drafted (every column, an aware UTC ``at``), in a chain
that ``verify_chain`` accepts. Replays are caught within a batch and across batches, and their
replay-memory rows read back with the expiry given. A state change commits with its entry, and
one that fails is rolled back to its savepoint while its entry is logged as ``failed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from node.store.engine import create_engine, migrate
from node.store.exchange_log import (
    T_SEEN,
    DuplicateMessage,
    ExchangeLog,
    LogDraft,
    LogFilter,
    SeenId,
    query_log,
    verify_chain,
)
from node.store.revocations import insert_revocation
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
    engine: AsyncEngine
    log: ExchangeLog
    batches: list[int]  # the size of each batch written, as the spy saw them


@pytest.fixture
async def store(
    store_target: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Store]:
    url, schema = store_target
    engine = create_engine(url, schema, create=True)
    await migrate(engine)
    log = ExchangeLog(engine, lambda: T)
    batches: list[int] = []
    real: Callable[..., Awaitable[Any]] = log._write

    async def recording(batch: list[Any]) -> Any:
        batches.append(len(batch))
        return await real(batch)

    monkeypatch.setattr(log, "_write", recording)
    try:
        yield Store(engine, log, batches)
    finally:
        await log.close()
        await engine.dispose()


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


# --- appends ----------------------------------------------------------------------------------


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
    assert store.batches == [5]  # one batch: one transaction
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
    assert store.batches == [5]
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
    assert store.batches[1:] == [3]
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


# --- a batch with state changes --------------------------------------------------------------


def revocation(n: int, revoked_at: datetime) -> Callable[[AsyncConnection], Awaitable[None]]:
    async def apply(conn: AsyncConnection) -> None:
        await insert_revocation(
            conn,
            consent_id=f"33333333-3333-4333-8333-{n:012d}",
            plan_id="11111111-1111-4111-8111-111111111111",
            revoked_at=revoked_at,
            revoked_by=PEER,
            notice_id=f"44444444-4444-4444-8444-{n:012d}",
            now=T,
        )

    return apply


async def failing_change(conn: AsyncConnection) -> None:
    await conn.execute(T_PEER_STATE.insert(), [{"node_id": PEER, "revocation_cursor": 7}])
    raise RuntimeError("the change fails after writing")


async def test_a_batch_with_state_changes_commits_them_with_their_entries(
    store: Store,
) -> None:
    revoked_at = datetime(2026, 11, 23, 10, 15, 0, tzinfo=CEST)
    batch = [
        (draft(1, message_type="consent.revoke", outcome="ok"), revocation(1, revoked_at), None),
        (draft(2), None, SeenId(PEER, "id-2", T + timedelta(minutes=1))),
        (draft(3, message_type="consent.revoke", outcome="ok"), failing_change, None),
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
    assert store.batches == [4]
    assert outcomes[:2] == [1, 2]
    assert isinstance(outcomes[2], RuntimeError)
    assert isinstance(outcomes[3], DuplicateMessage)

    # committed: another connection sees the change and the entries
    async with store.engine.connect() as conn:
        consents = (await conn.execute(select(T_REVOCATION.c.consent_id))).all()
        cursors = (await conn.execute(select(T_PEER_STATE.c.node_id))).all()
        logged = (
            await conn.exec_driver_sql("SELECT seq, outcome, reason FROM exchange_log ORDER BY seq")
        ).all()
    assert [tuple(r) for r in consents] == [("33333333-3333-4333-8333-000000000001",)]
    assert cursors == []  # the failed change was rolled back to its savepoint
    assert [tuple(r) for r in logged] == [
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

    # and the next batch continues the same chain
    assert await store.log.append(draft(5), None, SeenId(PEER, "id-5", T)) == 5
    assert store.batches[1:] == [1]
    await assert_chain_intact(store, 5)
