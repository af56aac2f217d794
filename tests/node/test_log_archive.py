"""``barnplan log archive``: old exchange-log entries move to a file that verifies on its own,
the live log keeps verifying from the boundary, and tampering with either (or with the
boundary) is still found; a crash between writing the file and deleting leaves a consistent
state that re-running finishes; bad input changes nothing. Real nodes on each backend."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from node.errors import Conflict, InvalidInput, Unavailable
from node.services import log_archive as archiving
from node.services.audit import checkpoint_and_witness, verify_log
from node.services.log_archive import archive_log, verify_archive
from node.services.witness import declare_restore
from node.store import log_archive as archive_store
from node.store.exchange_log import log_head, verify_chain
from node.store.tables import ExchangeLogEntry, LogArchive
from protocol.clock import ManualClock, format_time
from tests.conftest import T0, StoreFactory
from tests.support.federation import SCHOOL, SOCIAL, RunningNode, federation

T_LOG = ExchangeLogEntry.__table__  # type: ignore[attr-defined]
T_ARCHIVE = LogArchive.__table__  # type: ignore[attr-defined]
DAY = 86_400


@pytest.fixture
async def pair(
    tmp_path: Path, store_factory: StoreFactory, clock: ManualClock
) -> AsyncIterator[list[RunningNode]]:
    async with federation(tmp_path, [SCHOOL, SOCIAL], store_factory, clock) as nodes:
        yield nodes


async def traffic(school: RunningNode, social: RunningNode, n: int) -> None:
    for _ in range(n):
        sent = await school.node.peers.send(
            social.node_id, "hello", {"started_at": format_time(school.node.clock.now())}
        )
        assert sent.ok, sent


async def entries(node: RunningNode) -> list[int]:
    async with node.node.engine.connect() as conn:
        return [int(r[0]) for r in await conn.execute(select(T_LOG.c.seq).order_by(T_LOG.c.seq))]


async def history(school: RunningNode, social: RunningNode, clock: ManualClock) -> int:
    """Day 1: traffic and a witnessed checkpoint; day 2: more traffic after it; day 3: more.
    Returns the checkpoint's seq (the last entry an archive before day 3 can end at)."""
    await traffic(school, social, 4)
    checkpointed = (await log_head(school.node.engine))[0]
    outcomes = await checkpoint_and_witness(school.node)  # logs its own exchange, after it
    assert set(outcomes.values()) == {"ok"}, outcomes
    clock.advance(DAY)
    await traffic(school, social, 3)
    clock.advance(DAY)
    await traffic(school, social, 2)
    return checkpointed


async def test_archive_moves_the_prefix_and_both_parts_verify(
    pair: list[RunningNode], clock: ManualClock, tmp_path: Path
) -> None:
    school, social = pair
    checkpointed = await history(school, social, clock)
    before_day3 = T0 + timedelta(days=2)
    target = tmp_path / "archive-1.jsonl"
    head_before = await log_head(school.node.engine)

    report = await archive_log(school.node, before_day3, target)

    assert report is not None
    # day 2's entries were logged before the date but after the last checkpoint: they stay
    assert (report.first_seq, report.last_seq) == (1, checkpointed)
    assert report.requested_through > checkpointed and report.witnesses == 1
    live = await entries(school)
    assert live[0] == checkpointed + 1
    assert live[-1] == head_before[0] + 1  # seqs continue; the log.archive entry is the head
    check = await verify_archive(school.node, target)
    assert check.ok, check.problems
    assert (check.entries, check.checkpoints, check.witnesses) == (checkpointed, 1, 1)
    verified = await verify_log(school.node)
    assert verified.ok, verified.problems
    assert verified.archived_through == checkpointed

    # the peer sees a log that kept growing: its next checkpoint is witnessed as before
    await traffic(school, social, 1)
    assert set((await checkpoint_and_witness(school.node)).values()) == {"ok"}
    assert (await verify_log(school.node)).ok
    refusals = social.node.metrics.registry.get_sample_value(
        "barnplan_witness_refusals_total", {"reason": "shorter_log"}
    )
    assert not refusals
    # the chain walked in several ranges at once starts at the boundary just the same
    async with school.node.engine.connect() as conn:
        start = await archive_store.boundary(conn)
    assert start is not None
    walked = await verify_chain(school.node.engine, parts=3, start=(start.seq + 1, start.head_hash))
    assert walked.problem is None and walked.head_seq == (await log_head(school.node.engine))[0]
    wrong = await verify_chain(school.node.engine, parts=3, start=(1, start.head_hash))
    assert wrong.problem is not None and wrong.problem.kind == "missing"

    # running it again changes nothing: day 2's entries still have no checkpoint after them
    # before that date; and nothing in the live log is older than the first day
    with pytest.raises(Conflict):
        await archive_log(school.node, before_day3, tmp_path / "again.jsonl")
    assert await archive_log(school.node, T0, tmp_path / "again.jsonl") is None
    assert not (tmp_path / "again.jsonl").exists()
    assert (await entries(school))[0] == checkpointed + 1
    # no personal data: the file holds the log's columns only
    assert "201401012383" not in target.read_text()
    # a restore cannot be declared to an entry that is only in an archive now
    with pytest.raises(InvalidInput) as archived:
        await declare_restore(school.node, None, 1)
    assert "archived" in str(archived.value)


async def test_tampering_after_archiving_is_detected(
    pair: list[RunningNode], clock: ManualClock, tmp_path: Path
) -> None:
    school, social = pair
    checkpointed = await history(school, social, clock)
    target = tmp_path / "a.jsonl"
    assert await archive_log(school.node, T0 + timedelta(days=2), target) is not None
    engine = school.node.engine

    # the archive file: an entry edited
    lines = target.read_text().splitlines()
    entry = json.loads(lines[2])
    entry["outcome"] = "refused"
    edited = tmp_path / "edited.jsonl"
    edited.write_text("\n".join([*lines[:2], json.dumps(entry), *lines[3:]]) + "\n")
    check = await verify_archive(school.node, edited)
    assert not check.ok and check.problems[0]["kind"] == "edited"
    # an entry dropped from the file
    dropped = tmp_path / "dropped.jsonl"
    dropped.write_text("\n".join([lines[0], *lines[2:]]) + "\n")
    check = await verify_archive(school.node, dropped)
    assert not check.ok and check.problems[0]["kind"] == "missing"
    # the file cut short before its checkpoint
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:3]) + "\n")
    assert not (await verify_archive(school.node, cut)).ok

    # the remaining log: deleting its first entry (the one after the boundary)
    async with engine.begin() as conn:
        saved = (
            (await conn.execute(select(T_LOG).where(T_LOG.c.seq == checkpointed + 1)))
            .mappings()
            .one()
        )
        await conn.execute(delete(T_LOG).where(T_LOG.c.seq == checkpointed + 1))
    report = await verify_log(school.node)
    assert not report.ok and report.problems[0]["kind"] == "missing"
    async with engine.begin() as conn:
        await conn.execute(T_LOG.insert().values(**saved))
    assert (await verify_log(school.node)).ok

    # the remaining log: an entry changed
    async with engine.begin() as conn:
        await conn.execute(
            update(T_LOG).where(T_LOG.c.seq == checkpointed + 2).values(outcome="failed")
        )
    report = await verify_log(school.node)
    assert not report.ok and report.problems[0]["kind"] == "edited"
    async with engine.begin() as conn:
        await conn.execute(
            update(T_LOG).where(T_LOG.c.seq == checkpointed + 2).values(outcome=saved["outcome"])
        )
    assert (await verify_log(school.node)).ok

    # the boundary itself: its record deleted (the log then seems to start late)
    async with engine.begin() as conn:
        row = (await conn.execute(select(T_ARCHIVE))).mappings().one()
        await conn.execute(delete(T_ARCHIVE))
    report = await verify_log(school.node)
    assert not report.ok and report.problems[0]["kind"] == "missing"
    # ... or moved forward to a later entry, with the entries up to it deleted as if archived
    later = (await log_head(school.node.engine))[0] - 1
    async with engine.begin() as conn:
        head = (await conn.execute(select(T_LOG.c.hash).where(T_LOG.c.seq == later))).scalar_one()
        moved = {k: v for k, v in row.items() if k != "id"} | {"seq": later, "head_hash": head}
        await conn.execute(T_ARCHIVE.insert().values(**moved))
        await conn.execute(delete(T_LOG).where(T_LOG.c.seq <= later))
    report = await verify_log(school.node)
    assert not report.ok
    assert {p["kind"] for p in report.problems} == {"bad_archive"}


async def test_a_crash_before_the_delete_keeps_the_file_and_the_log_and_a_rerun_finishes(
    pair: list[RunningNode],
    clock: ManualClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    school, social = pair
    checkpointed = await history(school, social, clock)
    target = tmp_path / "a.jsonl"
    before = T0 + timedelta(days=2)

    async def crash(conn: object, through: int) -> int:
        raise OSError("disk gone")

    monkeypatch.setattr(archiving, "delete_entries", crash)
    with pytest.raises(Unavailable) as unfinished:
        await archive_log(school.node, before, target)
    assert "Run the same command again" in str(unfinished.value)
    monkeypatch.undo()
    assert target.exists() and (await verify_archive(school.node, target)).ok
    assert (await entries(school))[0] == 1  # nothing deleted
    async with school.node.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(T_ARCHIVE))).scalar() == 0
    assert (await verify_log(school.node)).ok
    assert not list(tmp_path.glob(".a.jsonl.*"))  # no temporary file left behind
    async with school.node.engine.connect() as conn:
        outcomes = await conn.execute(
            select(T_LOG.c.outcome).where(T_LOG.c.message_type == "log.archive")
        )
        assert [r[0] for r in outcomes] == ["failed"]  # the attempt is on record

    report = await archive_log(school.node, before, target)  # the same command again
    assert report is not None and report.resumed and report.last_seq == checkpointed
    assert (await entries(school))[0] == checkpointed + 1
    assert (await verify_log(school.node)).ok
    assert (await verify_archive(school.node, target)).ok


async def test_refusals_change_nothing(
    pair: list[RunningNode], clock: ManualClock, tmp_path: Path
) -> None:
    school, social = pair
    await traffic(school, social, 3)
    clock.advance(DAY)
    # no checkpoint yet
    with pytest.raises(Conflict) as refused:
        await archive_log(school.node, clock.now(), tmp_path / "a.jsonl")
    assert refused.value.code == "no_checkpoint" and "barnplan log checkpoint" in str(refused.value)
    assert not (tmp_path / "a.jsonl").exists()
    await checkpoint_and_witness(school.node)
    clock.advance(DAY)
    # an existing file that is not this archive
    taken = tmp_path / "taken.jsonl"
    taken.write_text("keep me\n")
    with pytest.raises(Conflict) as exists:
        await archive_log(school.node, clock.now(), taken)
    assert exists.value.code == "archive_exists"
    assert taken.read_text() == "keep me\n"
    assert (await entries(school))[0] == 1
    # a log already changed in the range is not archived (the file would not verify)
    async with school.node.engine.begin() as conn:
        await conn.execute(update(T_LOG).where(T_LOG.c.seq == 2).values(outcome="refused"))
    target = tmp_path / "b.jsonl"
    with pytest.raises(Conflict) as unverified:
        await archive_log(school.node, clock.now(), target)
    assert unverified.value.code == "archive_unverified" and "edited" in str(unverified.value)
    assert not target.exists() and not list(tmp_path.glob(".b.jsonl.*"))
    assert (await entries(school))[0] == 1
    async with school.node.engine.connect() as conn:
        assert await archive_store.boundary(conn) is None


async def test_status_facts_of_growth(pair: list[RunningNode], clock: ManualClock) -> None:
    school, social = pair
    await traffic(school, social, 2)
    clock.advance(DAY)
    await traffic(school, social, 3)
    async with school.node.engine.connect() as conn:
        days = await archive_store.growth_by_day(conn, T0 - timedelta(days=7))
        size = await archive_store.log_size(conn)
    assert [d.isoformat() for d, _, _ in days] == ["2026-11-23", "2026-11-24"]
    assert [n for _, n, _ in days] == [2, 3]
    assert all(b > 2 * 64 * n for _, n, b in days)  # two hashes an entry at least
    assert size.entries == 5 and size.bytes == sum(b for _, _, b in days)


async def test_consecutive_archives_chain(
    pair: list[RunningNode], clock: ManualClock, tmp_path: Path
) -> None:
    school, social = pair
    first_checkpoint = await history(school, social, clock)
    first = tmp_path / "1.jsonl"
    assert await archive_log(school.node, T0 + timedelta(days=2), first) is not None
    clock.advance(DAY)
    second_checkpoint = (await log_head(school.node.engine))[0]
    assert set((await checkpoint_and_witness(school.node)).values()) == {"ok"}
    clock.advance(DAY)
    await traffic(school, social, 1)
    second = tmp_path / "2.jsonl"
    report = await archive_log(school.node, clock.now(), second)
    assert report is not None
    assert (report.first_seq, report.last_seq) == (first_checkpoint + 1, second_checkpoint)
    check = await verify_archive(school.node, second)
    assert check.ok, check.problems
    assert check.first_prev == (await verify_archive(school.node, first)).last_head
    assert f"continues the archive that ended at entry {first_checkpoint}" in check.notes
    verified = await verify_log(school.node)
    assert verified.ok and verified.archived_through == second_checkpoint
    # the first archive's boundary is no longer the live one, and the live log still holds the
    # second's log.archive entry only
    async with school.node.engine.connect() as conn:
        assert await archive_store.archive_entries(conn, school.node_id, first_checkpoint) == []
        assert (
            len(await archive_store.archive_entries(conn, school.node_id, second_checkpoint)) == 1
        )
