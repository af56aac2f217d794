"""Witnesses catch a rewound log (issue #19, SPEC.md §7.8), with real nodes on real sockets and a
real backup and restore of the witnessed node's store: the SQLite file copied with SQLite's
online backup, or the PostgreSQL schema dumped with pg_dump and put back with pg_restore.

A witness signs each consistent extension of what it witnessed; it refuses the checkpoints of
the restored (rewound) log, whichever way its new history goes, with checkpoint_inconsistent,
the metric, an exchange-log entry and an event on /ops; it keeps refusing until the restore is
declared; then it accepts the history that continues from the declaration and shows it."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.engine import make_url

from node.config import load_config
from node.runtime import open_node
from node.services.audit import checkpoint_and_witness, make_checkpoint, verify_log
from node.services.witness import declare_restore
from node.store.exchange_log import LogFilter, log_head, query_log
from node.store.tables import CheckpointWitness, LogRestore, WitnessEvent
from protocol.clock import ManualClock, format_time
from protocol.documents import sign_restore
from tests.browser.support import PageClient, web_federation_on
from tests.conftest import POSTGRES_URL, StoreFactory
from tests.support.federation import SCHOOL, SOCIAL, RunningNode, sqlite_federation
from tests.support.nodes import barnplan_async

EVENTS = WitnessEvent.__table__  # type: ignore[attr-defined]
ACKS = CheckpointWitness.__table__  # type: ignore[attr-defined]
RESTORES = LogRestore.__table__  # type: ignore[attr-defined]
INCONSISTENT = "refused: checkpoint_inconsistent"


@pytest.fixture
async def pair(
    tmp_path: Path, store_factory: StoreFactory, clock: ManualClock
) -> AsyncIterator[list[RunningNode]]:
    """A school (the witnessed node) and social services (its witness), each on its own store
    on each backend, with passwords for the operator pages."""
    async with web_federation_on(tmp_path, [SCHOOL, SOCIAL], store_factory, clock) as nodes:
        yield nodes


async def traffic(school: RunningNode, social: RunningNode, n: int) -> None:
    """``n`` real exchanges, each one entry in the school's log."""
    for _ in range(n):
        sent = await school.node.peers.send(
            social.node_id, "hello", {"started_at": format_time(school.node.clock.now())}
        )
        assert sent.ok, sent


async def head(node: RunningNode) -> int:
    return (await log_head(node.node.engine))[0]


# --- a real backup and restore of the school's store ----------------------------------------------


async def take_backup(node: RunningNode, target: Path) -> None:
    """What OPERATIONS §3 says: SQLite's online backup, or pg_dump of the node's schema."""
    config = node.node.config
    if node.node.store.dialect == "sqlite":
        source = Path(str(make_url(config.database_url).database))

        def copy() -> None:
            src, dst = sqlite3.connect(source), sqlite3.connect(target)
            try:
                src.backup(dst)
            finally:
                dst.close()  # the last connection: the backup is whole in its one file
                src.close()

        await asyncio.to_thread(copy)
        return
    await run("pg_dump", "-Fc", "-n", config.store.schema_name, "-f", str(target), POSTGRES_URL)


async def restore_backup(node: RunningNode, backup: Path) -> None:
    """Stop the node, put the backup in place of its store, open and serve it again."""
    clock = node.node.clock
    config = node.node.config
    await node.stop()
    sqlite = node.node.store.dialect == "sqlite"
    await node.node.close()
    if sqlite:
        database = Path(str(make_url(config.database_url).database))
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(backup, database)
    else:
        await run(
            "pg_restore", "--clean", "--if-exists", "--no-owner", "-d", POSTGRES_URL, str(backup)
        )
    node.node = await open_node(load_config(config.directory), clock)
    await node.start()
    # as a real node, ready after its start-up catch-up (an exchange of its own, logged)
    await asyncio.wait_for(node.node.caught_up.wait(), timeout=30)


async def run(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, (command[0], out.decode(), err.decode())


# --- what the witness shows ---------------------------------------------------------------------


def refusals(witness: RunningNode, reason: str) -> float:
    value = witness.node.metrics.registry.get_sample_value(
        "barnplan_witness_refusals_total", {"reason": reason}
    )
    return value or 0.0


def restores(witness: RunningNode) -> float:
    value = witness.node.metrics.registry.get_sample_value(
        "barnplan_witness_restores_accepted_total"
    )
    return value or 0.0


async def events(witness: RunningNode) -> list[dict[str, Any]]:
    async with witness.node.engine.connect() as conn:
        rows = await conn.execute(select(EVENTS).order_by(EVENTS.c.id))
        return [dict(r) for r in rows.mappings()]


async def logged(witness: RunningNode, **match: str) -> list[dict[str, Any]]:
    """The witness's log entries of inbound checkpoints matching ``match``."""
    rows = await query_log(
        witness.node.engine, LogFilter(message_type="log.checkpoint", peer=SCHOOL[0]), 1000
    )
    return [r for r in rows if all(r[k] == v for k, v in match.items())]


async def ops_overview(witness: RunningNode) -> str:
    page = PageClient(witness)
    try:
        await page.login("ops")
        status, text = await page.get("/ops?lang=en")
    finally:
        await page.close()
    assert status == 200
    return text


# --- the tests ----------------------------------------------------------------------------------


async def test_a_witness_signs_each_consistent_extension_in_order(
    pair: list[RunningNode],
) -> None:
    school, social = pair
    for _ in range(3):
        await traffic(school, social, 2)
        assert await checkpoint_and_witness(school.node) == {social.node_id: "ok"}
    # a reply lost on the way back: the witness signed, the school never kept its witness
    await traffic(school, social, 2)
    assert await checkpoint_and_witness(school.node) == {social.node_id: "ok"}
    async with school.node.store.writing() as conn:
        lost = (await conn.execute(select(func.max(ACKS.c.seq)))).scalar_one()
        await conn.execute(delete(ACKS).where(ACKS.c.seq == lost))
    await traffic(school, social, 2)
    # the school asks again from the one it holds no witness for; the witness signs it again
    # and then the new one, which follows it
    assert await checkpoint_and_witness(school.node) == {social.node_id: "ok"}
    async with school.node.engine.connect() as conn:
        acked = (await conn.execute(select(ACKS.c.seq).order_by(ACKS.c.seq))).scalars().all()
    assert lost in acked and len(acked) == 5
    assert await events(social) == []
    assert refusals(social, "not_extension") == 0
    assert (await verify_log(school.node)).ok


@pytest.mark.parametrize(
    ("grow", "problem"),
    [
        (lambda gap: 1, "shorter_log"),
        (lambda gap: gap, "different_head"),
        (lambda gap: gap + 3, "not_extension"),
    ],
    ids=["shorter log", "another head at a witnessed entry", "longer, from another history"],
)
async def test_a_restored_log_is_refused_until_the_restore_is_declared(
    pair: list[RunningNode], tmp_path: Path, grow: Any, problem: str
) -> None:
    school, social = pair
    await traffic(school, social, 3)
    assert await checkpoint_and_witness(school.node) == {social.node_id: "ok"}
    backup = tmp_path / "school.backup"
    await take_backup(school, backup)
    at_backup = await head(school)
    await traffic(school, social, 5)
    assert await checkpoint_and_witness(school.node) == {social.node_id: "ok"}
    witnessed_last = at_backup + 5  # the second checkpoint's entry (its request is logged after)

    await restore_backup(school, backup)
    # the backup's entries, and the catch-up at start (hello, revocations.since, closures.since)
    restored = await head(school)
    assert at_backup < restored < witnessed_last
    # the restored node lives on: a new history from the backup on
    await traffic(school, social, grow(witnessed_last - restored))
    assert await checkpoint_and_witness(school.node) == {social.node_id: INCONSISTENT}
    assert refusals(social, problem) == 1
    [event] = await events(social)
    assert (event["kind"], event["problem"], event["seen_seq"]) == (
        "refused",
        problem,
        witnessed_last,
    )
    assert await logged(social, outcome="refused", reason="checkpoint_inconsistent")
    # undeclared, it stays refused, however long it goes on
    await traffic(school, social, 5)
    assert await checkpoint_and_witness(school.node) == {social.node_id: INCONSISTENT}
    assert refusals(social, problem) == 2

    # the way back: the operator declares the restore, naming the entry the backup ended with
    # (the node ran since); the witness sets aside what it witnessed above it and accepts the
    # new history, the checkpoints it refused included
    note = "restored from the backup of test day"
    declaration = await declare_restore(school.node, note, seq=at_backup)
    assert declaration["seq"] == at_backup
    assert await checkpoint_and_witness(school.node) == {social.node_id: "ok"}
    assert restores(social) == 1
    accepted = (await events(social))[-1]
    assert (accepted["kind"], accepted["seq"], accepted["seen_seq"]) == (
        "restore",
        at_backup,
        witnessed_last,
    )
    assert [c["seq"] for c in json.loads(accepted["superseded"])] == [witnessed_last]
    assert await logged(social, outcome="restore_accepted")
    page = await ops_overview(social)
    assert f'data-kind="restore" data-origin="{school.node_id}"' in page
    assert "restored from the backup of test day" in page
    assert f'data-kind="refused" data-origin="{school.node_id}"' in page
    # the new history goes on being witnessed; the school's own log verifies
    await traffic(school, social, 2)
    assert await checkpoint_and_witness(school.node) == {social.node_id: "ok"}
    assert restores(social) == 1
    assert (await verify_log(school.node)).ok


async def test_a_forged_or_malformed_restore_declaration_is_refused(
    pair: list[RunningNode],
) -> None:
    """Every bad declaration is refused with its reason, counted, and opens no new history."""
    school, social = pair
    await traffic(school, social, 3)
    assert await checkpoint_and_witness(school.node) == {social.node_id: "ok"}
    witnessed_seq = await head(school) - 1  # the checkpoint's entry; its request came after
    await traffic(school, social, 2)
    checkpoint = await make_checkpoint(school.node)
    assert checkpoint is not None
    key = school.node.identity.key
    now = school.node.clock.now()

    def declared(seq: int, head_hash: str, **changes: Any) -> dict[str, Any]:
        signed = sign_restore(node_id=school.node_id, seq=seq, head=head_hash, at=now, key=key)
        return {**signed, **changes}

    signed_by_social = sign_restore(
        node_id=school.node_id, seq=1, head="0" * 64, at=now, key=social.node.identity.key
    )
    good = declared(2, "0" * 64)
    cases = [
        ("tampered after signing", {**good, "seq": 1}, "bad_signature"),
        ("signed by another node's key", signed_by_social, "unknown_key"),
        ("without its type", {k: v for k, v in good.items() if k != "type"}, "malformed"),
        ("above its checkpoint", declared(checkpoint["seq"], checkpoint["head"]), "malformed"),
    ]
    for _name, restore, reason in cases:
        body = {"checkpoint": checkpoint, "restore": restore}
        result = await school.node.peers.send(social.node_id, "log.checkpoint", body)
        assert (result.outcome, result.reason) == ("refused", reason), _name
    assert refusals(social, "bad_declaration") == len(cases)
    # naming another head for an entry the witness witnessed: not an earlier state of the log
    other = declared(witnessed_seq, "f" * 64)
    result = await school.node.peers.send(
        social.node_id, "log.checkpoint", {"checkpoint": checkpoint, "restore": other}
    )
    assert (result.outcome, result.reason) == ("refused", "checkpoint_inconsistent")
    assert refusals(social, "different_head") == 1
    kinds = [e["kind"] for e in await events(social)]
    assert kinds == ["refused"] * (len(cases) + 1)
    assert restores(social) == 0
    # and the honest round still goes on as before
    assert await checkpoint_and_witness(school.node) == {social.node_id: "ok"}


@pytest.mark.slow  # barnplan CLI subprocesses
async def test_barnplan_log_restored_is_the_way_back(tmp_path: Path) -> None:
    """The operator's command, as OPERATIONS §3 says: restore the backup, then declare it; the
    witness accepts, and sets aside what it witnessed after the backup. Bad input changes
    nothing. (The CLI runs on the real clock, so the nodes' clock is set to it first.)"""
    clock = ManualClock(datetime.now(UTC))
    async with sqlite_federation(tmp_path, [SCHOOL, SOCIAL], clock) as (school, social):
        directory = str(school.node.config.directory)
        await traffic(school, social, 3)
        assert await checkpoint_and_witness(school.node) == {social.node_id: "ok"}
        backup = tmp_path / "school.backup"
        await take_backup(school, backup)
        await traffic(school, social, 4)
        assert await checkpoint_and_witness(school.node) == {social.node_id: "ok"}
        await restore_backup(school, backup)
        restored = await head(school)

        for bad, says in (
            (("--note", "x" * 201), "at most 200 characters"),
            (("--seq", str(restored + 1)), f"the log has entries 1 to {restored}"),
        ):
            ran = await barnplan_async("log", "restored", "--dir", directory, *bad)
            assert ran.returncode != 0 and says in ran.stderr, ran
        assert await head(school) == restored  # nothing written, not even a log entry

        clock.set(datetime.now(UTC))
        note = "restored from the backup of 3 December"
        ran = await barnplan_async("log", "restored", "--dir", directory, "--note", note)
        assert ran.returncode == 0, ran.stderr
        assert f"continues from entry {restored}" in ran.stdout
        assert f"{social.node_id:32} ok" in ran.stdout
        assert restores(social) == 1
        accepted = (await events(social))[-1]
        assert (accepted["kind"], accepted["seq"]) == ("restore", restored)
        assert json.loads(accepted["signed"])["note"] == note
        assert len(json.loads(accepted["superseded"])) == 1
        entries = await query_log(school.node.engine, LogFilter(message_type="log.restore"), 10)
        assert [(e["outcome"], e["seq"]) for e in entries] == [("declared", restored + 1)]
        clock.set(datetime.now(UTC))
        await traffic(school, social, 2)
        assert await checkpoint_and_witness(school.node) == {social.node_id: "ok"}


async def test_log_verify_checks_the_restore_declarations(pair: list[RunningNode]) -> None:
    """A declaration is signed and names an entry of the log with its hash: one changed in the
    store fails ``log verify``."""
    school, social = pair
    await traffic(school, social, 3)
    await declare_restore(school.node, None)
    assert await checkpoint_and_witness(school.node) == {social.node_id: "ok"}
    assert (await verify_log(school.node)).ok
    async with school.node.store.writing() as conn:
        await conn.execute(RESTORES.update().values(seq=1))  # the declared entry, in the row
    report = await verify_log(school.node)
    assert not report.ok
    assert [p["kind"] for p in report.problems] == ["bad_declaration"]
