"""The exchange log is tamper-evident: every kind of edit is caught by ``log verify``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from node.services.audit import checkpoint_and_witness, make_checkpoint, verify_log
from node.store.engine import begin_write
from node.store.exchange_log import GENESIS, entry_hash
from node.store.tables import ExchangeLogEntry, LogCheckpoint, WitnessedCheckpoint
from protocol.clock import ManualClock
from protocol.documents import sign_checkpoint
from tests.conftest import StoreFactory
from tests.integration.test_release_flow import consent_body, fragment, setup_plan
from tests.support.federation import BUP, SCHOOL, SOCIAL, RunningNode, start_federation, stop_all

LOG = ExchangeLogEntry.__table__  # type: ignore[attr-defined]
WITNESSED = WitnessedCheckpoint.__table__  # type: ignore[attr-defined]
CHECKPOINTS = LogCheckpoint.__table__  # type: ignore[attr-defined]
Mutation = Callable[[AsyncConnection, list[dict[str, Any]]], Coroutine[Any, Any, None]]


@pytest.fixture
async def busy_lead(
    tmp_path: Path, store_factory: StoreFactory, clock: ManualClock
) -> AsyncIterator[tuple[RunningNode, list[RunningNode]]]:
    """A lead whose log holds real traffic, a witnessed checkpoint mid-way and one at the end."""
    nodes = await start_federation(tmp_path, [SCHOOL, SOCIAL, BUP], store_factory, clock)
    try:
        school, social, _ = nodes
        plan_id, _ = await setup_plan(nodes)
        await social.api("POST", f"/plans/{plan_id}/fragments", "prof", fragment("social", "S"))
        grants = [{"from": social.node_id, "to": [school.node_id], "categories": ["social"]}]
        await school.api("POST", f"/plans/{plan_id}/consents", "lead", consent_body(grants))
        for _ in range(3):
            await school.api("GET", f"/plans/{plan_id}/shared", "lead")
        outcomes = await checkpoint_and_witness(school.node)
        assert set(outcomes.values()) == {"ok"}, outcomes
        for _ in range(3):
            await school.api("GET", f"/plans/{plan_id}/shared", "lead")
        await make_checkpoint(school.node)
        yield school, nodes
    finally:
        await stop_all(nodes)


async def rows(conn: AsyncConnection) -> list[dict[str, Any]]:
    return [dict(r) for r in (await conn.execute(select(LOG).order_by(LOG.c.seq))).mappings()]


async def restore(conn: AsyncConnection, saved: list[dict[str, Any]]) -> None:
    await conn.execute(delete(LOG))
    await conn.execute(LOG.insert(), saved)


async def edit_field(conn: AsyncConnection, log: list[dict[str, Any]]) -> None:
    await conn.execute(update(LOG).where(LOG.c.seq == 5).values(outcome="released"))


async def delete_entry(conn: AsyncConnection, log: list[dict[str, Any]]) -> None:
    await conn.execute(delete(LOG).where(LOG.c.seq == 5))


async def swap_two(conn: AsyncConnection, log: list[dict[str, Any]]) -> None:
    a, b = log[4], log[5]  # seq 5 and 6 exchange everything but their place
    await conn.execute(
        update(LOG).where(LOG.c.seq == 5).values(**{k: v for k, v in b.items() if k != "seq"})
    )
    await conn.execute(
        update(LOG).where(LOG.c.seq == 6).values(**{k: v for k, v in a.items() if k != "seq"})
    )


async def truncate_tail(conn: AsyncConnection, log: list[dict[str, Any]]) -> None:
    await conn.execute(delete(LOG).where(LOG.c.seq > len(log) - 3))


async def rewrite_from_5(conn: AsyncConnection, log: list[dict[str, Any]]) -> None:
    """An administrator edits entry 5 and recomputes every hash after it: the chain is whole."""
    prev = log[3]["hash"]
    for row in log[4:]:
        new = {**row, "prev_hash": prev}
        if row["seq"] == 5:
            new["outcome"] = "released"
        new["hash"] = entry_hash(new)
        await conn.execute(
            update(LOG)
            .where(LOG.c.seq == row["seq"])
            .values(prev_hash=new["prev_hash"], hash=new["hash"], outcome=new["outcome"])
        )
        prev = new["hash"]


MUTATIONS: list[tuple[str, Mutation, str, Callable[[list[dict[str, Any]]], int]]] = [
    ("edit a field", edit_field, "edited", lambda log: 5),
    ("delete an entry", delete_entry, "missing", lambda log: 5),
    ("swap two entries", swap_two, "broken_link", lambda log: 5),
    ("truncate the tail", truncate_tail, "truncated", lambda log: len(log) - 2),
    ("rewrite consistently", rewrite_from_5, "rewritten", lambda log: -1),
]


async def test_an_untouched_log_verifies(busy_lead: tuple[RunningNode, list[RunningNode]]) -> None:
    school, _ = busy_lead
    report = await verify_log(school.node)
    assert report.ok, report.problems
    assert report.entries > 10 and report.checkpoints == 2 and report.witnesses == 2
    async with school.node.engine.connect() as conn:
        first = (await rows(conn))[0]
    assert first["prev_hash"] == GENESIS


@pytest.mark.parametrize(
    ("name", "mutate", "kind", "seq_of"), MUTATIONS, ids=[m[0] for m in MUTATIONS]
)
async def test_each_mutation_is_detected_with_the_entry_named(
    busy_lead: tuple[RunningNode, list[RunningNode]],
    name: str,
    mutate: Mutation,
    kind: str,
    seq_of: Callable[[list[dict[str, Any]]], int],
) -> None:
    school, _ = busy_lead
    engine = school.node.engine
    async with engine.connect() as conn:
        saved = await rows(conn)
    async with begin_write(engine) as conn:
        await mutate(conn, saved)
    report = await verify_log(school.node)
    assert not report.ok, name
    first = report.problems[0]
    assert first["kind"] == kind, report.problems
    expected = seq_of(saved)
    if expected > 0:
        assert first["seq"] == expected, report.problems
    else:  # named by the first checkpoint the rewrite contradicts, with the range
        assert first["seq"] >= 5 and "after entry" in first["detail"], report.problems
    async with begin_write(engine) as conn:
        await restore(conn, saved)
    assert (await verify_log(school.node)).ok


async def test_a_rewrite_with_re_signed_checkpoints_is_caught_by_the_witnesses(
    busy_lead: tuple[RunningNode, list[RunningNode]],
    clock: ManualClock,
) -> None:
    """An administrator with the database AND the node key still cannot hide a rewrite."""
    school, _ = busy_lead
    engine = school.node.engine
    async with engine.connect() as conn:
        saved = await rows(conn)
    async with begin_write(engine) as conn:
        await rewrite_from_5(conn, saved)
        fresh = {r["seq"]: r["hash"] for r in await rows(conn)}
        for cp in (await conn.execute(select(CHECKPOINTS))).mappings().all():
            seq = int(cp["seq"])
            signed = sign_checkpoint(
                node_id=school.node_id,
                seq=seq,
                head=fresh[seq],
                at=clock.now(),
                key=school.node.identity.key,
            )
            await conn.execute(
                update(CHECKPOINTS)
                .where(CHECKPOINTS.c.seq == seq)
                .values(head_hash=fresh[seq], signed=json.dumps(signed))
            )
    report = await verify_log(school.node)
    assert not report.ok
    assert {p["kind"] for p in report.problems} == {"witness_mismatch"}, report.problems


async def test_a_peer_refuses_to_witness_a_rewritten_history(
    busy_lead: tuple[RunningNode, list[RunningNode]],
    clock: ManualClock,
) -> None:
    school, nodes = busy_lead
    social = nodes[1]
    async with school.node.engine.connect() as conn:
        first = (
            (await conn.execute(select(CHECKPOINTS).order_by(CHECKPOINTS.c.seq))).mappings().first()
        )
    assert first is not None
    forged = sign_checkpoint(
        node_id=school.node_id,
        seq=int(first["seq"]),
        head="0" * 64,
        at=clock.now(),
        key=school.node.identity.key,
    )
    result = await school.node.peers.send(social.node_id, "log.checkpoint", {"checkpoint": forged})
    assert result.outcome == "refused", result


async def test_a_peer_refuses_to_witness_a_rewound_log(
    busy_lead: tuple[RunningNode, list[RunningNode]],
    clock: ManualClock,
) -> None:
    """A checkpoint below the highest seq a witness signed for that node (a restored, rewound
    log) is refused, even at a seq the witness never saw; the same checkpoint again is not."""
    school, nodes = busy_lead
    social = nodes[1]
    async with social.node.engine.connect() as conn:
        witnessed = (
            await conn.execute(
                select(WITNESSED.c.seq, WITNESSED.c.signed).where(
                    WITNESSED.c.origin == school.node_id
                )
            )
        ).all()
    [(highest, signed)] = witnessed
    assert highest > 2
    rewound = sign_checkpoint(
        node_id=school.node_id,
        seq=highest - 2,
        head="1" * 64,
        at=clock.now(),
        key=school.node.identity.key,
    )
    result = await school.node.peers.send(social.node_id, "log.checkpoint", {"checkpoint": rewound})
    assert result.outcome == "refused", result
    again = await school.node.peers.send(
        social.node_id, "log.checkpoint", {"checkpoint": json.loads(signed)}
    )
    assert again.outcome == "ok", again  # the checkpoint it did witness is signed again
