"""The fast chain walker (``node.store.chain_verify``) judges every chain exactly as the plain
walk does: the same ``entry_hash``, the same first problem named, split over processes or not."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, select

from node.store import chain_verify
from node.store.chain_verify import ChainProblem, ChainResult, ChainWalker
from node.store.engine import create_engine as create_async_engine
from node.store.engine import migrate
from node.store.exchange_log import (
    COLUMNS,
    GENESIS,
    LogDraft,
    draft_row,
    entry_hash,
    verify_chain,
)
from node.store.log_entry import entry_text, format_at, stored_at, stored_at_text
from node.store.tables import ExchangeLogEntry

LOG = ExchangeLogEntry.__table__  # type: ignore[attr-defined]
T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
KEEP = {5, 14, 21, 33}


def verify_file(path: str, keep: set[int] | None, parts: int) -> ChainResult:
    """``verify_chain`` over the SQLite file at ``path``, through an engine of its own."""

    async def walk() -> ChainResult:
        engine = create_async_engine(f"sqlite:///{path}", create=True)  # a log table only
        try:
            return await verify_chain(engine, keep=keep, parts=parts)
        finally:
            await engine.dispose()

    return asyncio.run(walk())


def plain_verify(engine: Engine, keep: set[int] | None = None) -> ChainResult:
    """The walk as it was written first (a dict per row, ``entry_hash``): the reference."""
    result = ChainResult()
    prev, expected = GENESIS, 1
    with engine.connect() as conn:
        for mapping in conn.execute(select(LOG).order_by(LOG.c.seq)).mappings():
            row = dict(mapping)
            seq = row["seq"]
            if seq != expected:
                kind = "missing" if seq > expected else "reordered"
                result.problem = ChainProblem(
                    expected, kind, f"expected entry {expected}, found {seq}"
                )
                return result
            if row["prev_hash"] != prev:
                result.problem = ChainProblem(
                    seq,
                    "broken_link",
                    "prev_hash does not match the entry before: an entry was removed, "
                    "inserted or swapped here",
                )
                return result
            if entry_hash(row) != row["hash"]:
                result.problem = ChainProblem(
                    seq, "edited", "the entry's content does not match its hash"
                )
                return result
            prev = row["hash"]
            if keep is not None and seq in keep:
                result.hashes[seq] = prev
            result.entries += 1
            expected += 1
    result.head_seq, result.head_hash = expected - 1, prev
    return result


def sample_drafts() -> Iterator[LogDraft]:
    i = 0
    while True:
        yield LogDraft(
            direction="in" if i % 2 else "out",
            peer=f"p{i % 5}.test.se",
            message_type="fragments.request" if i % 3 else "consent.revoke",
            message_id=f"00000000-0000-0000-0000-{i:012d}",
            outcome=["released", "withheld", "refused"][i % 3],
            reason=None if i % 3 == 0 else "category_not_granted",
            plan_id=None if i % 4 == 0 else f"plan-{i % 7}",
            consent_id=None if i % 4 == 0 else f"consent-{i % 7}",
            purpose=None if i % 5 == 0 else "sip",
            professional=None if i % 6 == 0 else f'u/"{i}"\\ö\n',
            categories=["health", "education"][: i % 3],
            released=i % 3,
            withheld=[("health", "category_not_granted")] if i % 3 == 1 else [],
        )
        i += 1


def chain_rows(count: int) -> list[dict[str, Any]]:
    rows, prev = [], GENESIS
    for seq, draft in zip(range(1, count + 1), sample_drafts(), strict=False):
        row = draft_row(draft, seq, prev, T0 + timedelta(seconds=seq, microseconds=seq % 3))
        prev = row["hash"]
        rows.append(row)
    return rows


@pytest.fixture
def chain_file(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A 40-entry chain in an SQLite file, written through the store's table definition."""
    path = tmp_path / "log.db"
    engine = create_engine(f"sqlite:///{path}")
    LOG.create(engine)
    with engine.begin() as conn:
        conn.execute(LOG.insert(), chain_rows(40))
    yield str(path), engine
    engine.dispose()


def execute(path: str, *statements: str) -> None:
    with sqlite3.connect(path) as db:
        for statement in statements:
            db.execute(statement)
    db.close()


SWAP_21_22 = (
    "UPDATE exchange_log SET seq = -21 WHERE seq = 21",
    "UPDATE exchange_log SET seq = 21 WHERE seq = 22",
    "UPDATE exchange_log SET seq = 22 WHERE seq = -21",
)
# cut points: 2 parts start ranges at 1, 21; 3 parts at 1, 14, 27
TAMPERING: dict[str, tuple[str, ...]] = {
    "untouched": (),
    "edit the first entry": ("UPDATE exchange_log SET outcome = 'x' WHERE seq = 1",),
    "edit entry 5": ("UPDATE exchange_log SET released = 7 WHERE seq = 5",),
    "edit the first entry of a range": ("UPDATE exchange_log SET peer = 'x' WHERE seq = 21",),
    "edit the first entry of the third range": (
        "UPDATE exchange_log SET peer = 'x' WHERE seq = 27",
    ),
    "edit the last entry": ("UPDATE exchange_log SET outcome = 'x' WHERE seq = 40",),
    "delete the first entry": ("DELETE FROM exchange_log WHERE seq = 1",),
    "delete the last entry of a range": ("DELETE FROM exchange_log WHERE seq = 20",),
    "delete the first entry of a range": ("DELETE FROM exchange_log WHERE seq = 21",),
    "delete the last entry": ("DELETE FROM exchange_log WHERE seq = 40",),
    "delete a run across a cut": ("DELETE FROM exchange_log WHERE seq BETWEEN 12 AND 30",),
    "swap two entries at a cut": SWAP_21_22,
    "break a link at a cut": ("UPDATE exchange_log SET prev_hash = 'x' WHERE seq = 27",),
    "break a link and edit later": (
        "UPDATE exchange_log SET prev_hash = 'x' WHERE seq = 30",
        "UPDATE exchange_log SET outcome = 'x' WHERE seq = 3",
    ),
    "an entry before the first": (
        "INSERT INTO exchange_log SELECT 0, at, direction, peer, message_type, message_id, "
        "plan_id, consent_id, purpose, professional, categories, released, withheld, outcome, "
        "reason, prev_hash, hash FROM exchange_log WHERE seq = 1",
    ),
    "a float where an integer goes": ("UPDATE exchange_log SET released = 1.5 WHERE seq = 9",),
    "a number where text goes": ("UPDATE exchange_log SET categories = 12 WHERE seq = 9",),
    "a blob where text goes": ("UPDATE exchange_log SET withheld = x'00ff' WHERE seq = 33",),
    "an empty log": ("DELETE FROM exchange_log",),
}


@pytest.mark.slow  # a log built and tampered with for each of about forty cases
@pytest.mark.parametrize("parts", [1, 2, 3])
@pytest.mark.parametrize("tampering", list(TAMPERING), ids=list(TAMPERING))
def test_split_walk_names_the_same_first_problem_as_the_plain_walk(
    chain_file: tuple[str, Engine], tampering: str, parts: int
) -> None:
    path, engine = chain_file
    execute(path, *TAMPERING[tampering])
    try:
        expected: ChainResult | Exception = plain_verify(engine, KEEP)
    except TypeError as exc:  # a blob cannot be canonical JSON: the plain walk crashed here
        expected = exc
    if isinstance(expected, Exception):  # the fast walk names the entry instead of crashing
        found = verify_file(path, KEEP, parts).problem
        assert found is not None and (found.seq, found.kind) == (33, "edited")
        return
    assert verify_file(path, KEEP, parts) == expected
    assert verify_file(path, None, parts) == plain_verify(engine)


def test_a_stored_time_with_an_offset_is_hashed_as_the_store_reads_it(
    chain_file: tuple[str, Engine],
) -> None:
    """A time SQLAlchemy did not write (hand-edited, with an offset) takes entry_hash's path."""
    path, engine = chain_file
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(LOG).order_by(LOG.c.seq)).mappings()]
    prev = rows[7]["hash"]
    statements = ["UPDATE exchange_log SET at = '2026-11-23T10:00:00.5+01:00' WHERE seq = 9"]
    for row in rows[8:]:  # rewrite the chain from entry 9 on, consistently
        row = {**row, "prev_hash": prev}
        if row["seq"] == 9:
            row["at"] = datetime(2026, 11, 23, 9, 0, 0, 500000, tzinfo=UTC)
        row["hash"] = entry_hash(row)
        prev = row["hash"]
        statements.append(
            f"UPDATE exchange_log SET prev_hash = '{row['prev_hash']}', hash = '{row['hash']}' "
            f"WHERE seq = {row['seq']}"
        )
    execute(path, *statements)
    expected = plain_verify(engine, KEEP)
    assert expected.problem is None
    for parts in (1, 2):
        assert verify_file(path, KEEP, parts) == expected


@pytest.mark.parametrize("value", ["'yesterday'", "12345", "X'00ff'"])
def test_an_unreadable_time_is_reported_as_an_edited_entry(
    chain_file: tuple[str, Engine], value: str
) -> None:
    # the old walk crashed here (a traceback for the operator); the fast one names the entry
    path, _engine = chain_file
    execute(path, f"UPDATE exchange_log SET at = {value} WHERE seq = 30")
    for parts in (1, 2):
        result = verify_file(path, None, parts)
        assert result.problem is not None
        assert (result.problem.seq, result.problem.kind) == (30, "edited")
        assert result.entries == 29


def test_each_child_walks_its_range_through_an_engine_of_its_own(
    chain_file: tuple[str, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The children really walk (none falls back to the caller), on the one engine path."""
    path, engine = chain_file
    finished: list[chain_verify.Segment | None] = []
    finish = chain_verify._finish_child

    def counted(child: Any) -> chain_verify.Segment | None:
        finished.append(finish(child))
        return finished[-1]

    monkeypatch.setattr(chain_verify, "_finish_child", counted)
    assert verify_file(path, KEEP, 3) == plain_verify(engine, KEEP)
    assert [s.entries if s else None for s in finished] == [13, 14]  # seqs 14-26 and 27-40


@pytest.mark.parametrize("executable", ["/bin/false", "/nonexistent/python"])
def test_a_child_that_fails_leaves_its_range_to_the_caller(
    chain_file: tuple[str, Engine], monkeypatch: pytest.MonkeyPatch, executable: str
) -> None:
    path, engine = chain_file
    execute(path, "UPDATE exchange_log SET outcome = 'x' WHERE seq = 33")
    monkeypatch.setattr(sys, "executable", executable)
    assert verify_file(path, KEEP, 3) == plain_verify(engine, KEEP)


async def test_verify_chain_on_a_sqlite_file_splits_and_matches_the_plain_walk(
    tmp_path: Path,
) -> None:
    path = tmp_path / "node.db"
    engine = create_async_engine(f"sqlite:///{path}", create=True)
    try:
        await migrate(engine)
        async with engine.begin() as conn:
            await conn.execute(LOG.insert(), chain_rows(30))
        execute(str(path), "UPDATE exchange_log SET outcome = 'x' WHERE seq = 25")
        sync = create_engine(f"sqlite:///{path}")
        expected = plain_verify(sync, KEEP)
        sync.dispose()
        assert expected.problem == ChainProblem(
            25, "edited", "the entry's content does not match its hash"
        )
        assert await verify_chain(engine, keep=KEEP, parts=2) == expected
        assert await verify_chain(engine, keep=KEEP) == expected
    finally:
        await engine.dispose()


def test_the_walker_reads_the_same_columns_and_genesis_as_the_log() -> None:
    assert chain_verify.COLUMNS == COLUMNS == tuple(c.name for c in LOG.columns)
    assert chain_verify.GENESIS == GENESIS


def test_segments_survive_the_trip_from_a_child() -> None:
    segment = chain_verify.Segment(3, "ab", 9, "cd", 7, {5: "ef"}, ChainProblem(10, "edited", "x"))
    assert chain_verify.Segment.from_json(segment.to_json()) == segment


@pytest.mark.parametrize(("lo", "hi", "parts"), [(1, 40, 2), (1, 40, 3), (5, 5, 3), (0, 1, 4)])
def test_ranges_cover_every_seq_once(lo: int, hi: int, parts: int) -> None:
    ranges = chain_verify.cut(lo, hi, parts)
    covered = [s for a, b in ranges for s in range(a, b + 1)]
    assert covered == list(range(lo, hi + 1))


# --- the canonical bytes: the fast path is entry_hash, for any content --------------------------


def texts(max_size: int, exclude: str = "") -> st.SearchStrategy[str]:
    """Any text the store can hold (UTF-8: no lone surrogates), quotes and controls included."""
    return st.text(st.characters(codec="utf-8", exclude_characters=exclude), max_size=max_size)


maybe_text = st.none() | texts(12)
drafts = st.builds(
    LogDraft,
    direction=texts(4),
    peer=texts(12),
    message_type=texts(12),
    message_id=texts(12),
    outcome=texts(8),
    reason=maybe_text,
    plan_id=maybe_text,
    consent_id=maybe_text,
    purpose=maybe_text,
    professional=maybe_text,
    categories=st.lists(texts(6, exclude=",")),
    released=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    withheld=st.lists(st.tuples(texts(6), texts(6)), max_size=3),
)
times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)


def stored_rows(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows as the sqlite3 driver returns them from the store's table (``at`` as text)."""
    engine = create_engine("sqlite://")
    try:
        LOG.create(engine)
        with engine.begin() as conn:
            conn.execute(LOG.insert(), rows)
            query = f"SELECT {', '.join(COLUMNS)} FROM exchange_log ORDER BY seq"
            return [tuple(r) for r in conn.exec_driver_sql(query)]
    finally:
        engine.dispose()


def walk(
    rows: list[tuple[Any, ...]], at_text: Callable[[Any], str | None], at_value: Any
) -> ChainResult:
    walker = ChainWalker(None, at_text, at_value)
    walker.feed(rows)
    return walker.result()


def spec_text(row: dict[str, Any]) -> str:
    """SPEC.md §7.8 as written: canonical JSON of every field but ``hash``, ``at`` as RFC 3339
    UTC with microseconds."""
    material = {k: v for k, v in row.items() if k != "hash"}
    material["at"] = format_at(row["at"])
    return json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@given(entries=st.lists(st.tuples(drafts, times), min_size=1, max_size=4))
def test_the_text_form_is_the_spec_s_canonical_json(
    entries: list[tuple[LogDraft, datetime]],
) -> None:
    """The accelerated text form is byte for byte ``json.dumps`` of the entry, and the walker
    accepts the chain from SQLite's and PostgreSQL's stored values alike."""
    rows, prev = [], GENESIS
    for seq, (draft, at) in enumerate(entries, start=1):
        row = draft_row(draft, seq, prev, at)
        fields = {k: v for k, v in row.items() if k not in ("seq", "at", "hash")}
        text = entry_text(format_at(at)[:-1], seq=seq, **fields)
        assert text == spec_text(row)
        assert row["hash"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
        prev = row["hash"]
        rows.append(row)
    expected = ChainResult(entries=len(rows), head_seq=len(rows), head_hash=prev)
    assert walk(stored_rows(rows), stored_at_text, stored_at) == expected
    as_pg = [tuple(r[c] for c in COLUMNS) for r in rows]  # PostgreSQL: aware datetimes
    assert walk(as_pg, stored_at_text, stored_at) == expected


@pytest.mark.parametrize(
    "unusual",
    [{"released": 1.5}, {"released": True}, {"seq": 2**70}, {"plan_id": 7}, {"withheld": None}],
)
def test_unusual_values_take_json_dumps_itself(unusual: dict[str, Any]) -> None:
    row = draft_row(next(sample_drafts()), 1, GENESIS, T0)
    row.update(unusual)
    fields = {k: v for k, v in row.items() if k not in ("at", "hash")}
    assert entry_text(format_at(T0)[:-1], **fields) == spec_text(row)
