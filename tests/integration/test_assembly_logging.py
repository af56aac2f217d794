"""The lead logs every finished exchange of an assembly — also when the assembly fails.

The assembly appends its peers' entries in one transaction once every peer answered or the
deadline passed (SPEC §8). These tests hold that to the cases where it could go wrong: a reply
whose fragment is rejected gets its ``bad_reply`` entry right after the request's; an assembly
that fails while checking a reply, or that is cancelled while a slow peer is still out, still
logs each exchange that had finished, and leaves no request running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from node.services import assembly
from node.services.assembly import assemble
from node.store.tables import ExchangeLogEntry, User
from protocol.clock import ManualClock
from tests.conftest import StoreFactory
from tests.support.fakepeer import FakePeer
from tests.support.federation import SCHOOL, SOCIAL, RunningNode, start_federation, stop_all
from tests.support.plans import (
    add_child,
    add_fragment,
    create_plan,
    link_invitation,
    record_consent,
    rich_fragment,
)
from tests.support.waiting import wait_until_async

LOG = ExchangeLogEntry.__table__  # type: ignore[attr-defined]


@pytest.fixture
async def world(
    tmp_path: Path, store_factory: StoreFactory, clock: ManualClock
) -> AsyncIterator[tuple[RunningNode, RunningNode, FakePeer, FakePeer, str]]:
    nodes = await start_federation(tmp_path, [SCHOOL, SOCIAL], store_factory, clock)
    school, social = nodes
    slow = FakePeer("slow.test.se", "slow", clock, delay_s=30.0)
    badfrag = FakePeer("fragsig.test.se", "bad_fragment_signature", clock)
    try:
        for fake in (slow, badfrag):
            await fake.start()
            await fake.trusted_by(school)
        child = await add_child(school)
        await add_child(social)
        plan_id = await create_plan(school, child, [social.node_id, slow.node_id, badfrag.node_id])
        await link_invitation(social, plan_id)
        for fake in (slow, badfrag):
            await fake.link(school, plan_id)
        await add_fragment(social, plan_id, rich_fragment("social", "SOC-OK"))
        grants = {social.node_id: ["social"], slow.node_id: ["family"], badfrag.node_id: ["health"]}
        await record_consent(school, plan_id, grants, school.node.clock.now())
        yield school, social, slow, badfrag, plan_id
    finally:
        for fake in (slow, badfrag):
            await fake.stop()
        await stop_all(nodes)


def lead(school: RunningNode) -> User:
    return User(
        user_id="lead",
        display_name="Lead",
        role="lead",
        token_hash="0" * 64,
        created_at=school.node.clock.now(),
    )


async def log_rows(node: RunningNode) -> list[dict[str, Any]]:
    async with node.node.engine.connect() as conn:
        rows = (await conn.execute(select(LOG).order_by(LOG.c.seq))).mappings().all()
    return [dict(r) for r in rows]


def fragment_exchanges(rows: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [
        (r["direction"], r["peer"], r["message_type"], r["outcome"])
        for r in rows
        if r["message_type"] in ("fragments.request", "fragments.response")
    ]


async def test_a_rejected_reply_is_logged_right_after_its_request(
    world: tuple[RunningNode, RunningNode, FakePeer, FakePeer, str],
) -> None:
    school, social, slow, badfrag, plan_id = world
    school.node.config.assembly.deadline_s = 1.0
    before = len(await log_rows(school))
    shared = await assemble(school.node, lead(school), plan_id)
    statuses = {p["node_id"]: p["status"] for p in shared["participants"]}
    assert statuses[badfrag.node_id] == "invalid"
    assert statuses[slow.node_id] == "timed_out"
    assert statuses[social.node_id] == "included"
    new = (await log_rows(school))[before:]
    # one transaction: the assembly's entries are consecutive and nothing else is between them
    assert [r["seq"] for r in new] == list(range(new[0]["seq"], new[0]["seq"] + len(new)))
    exchanges = fragment_exchanges(new)
    assert sorted(exchanges) == sorted(
        [
            ("out", social.node_id, "fragments.request", "ok"),
            ("out", slow.node_id, "fragments.request", "timeout"),
            ("out", badfrag.node_id, "fragments.request", "ok"),
            ("in", badfrag.node_id, "fragments.response", "bad_reply"),
        ]
    )
    i = exchanges.index(("out", badfrag.node_id, "fragments.request", "ok"))
    assert exchanges[i + 1] == ("in", badfrag.node_id, "fragments.response", "bad_reply")


async def test_an_assembly_that_fails_still_logs_what_finished(
    world: tuple[RunningNode, RunningNode, FakePeer, FakePeer, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    school, social, slow, _, plan_id = world
    school.node.config.assembly.deadline_s = 20.0
    checked = assembly._check_reply

    def broken_check(node: Any, result: Any, *args: Any) -> Any:
        if result.peer == social.node_id:
            raise RuntimeError("a bug while checking a reply")
        return checked(node, result, *args)

    monkeypatch.setattr(assembly, "_check_reply", broken_check)
    before = len(await log_rows(school))
    with pytest.raises(RuntimeError, match="a bug while checking"):
        await asyncio.wait_for(assemble(school.node, lead(school), plan_id), 10)
    exchanges = fragment_exchanges((await log_rows(school))[before:])
    # social answered (its check then failed): its exchange is logged. The slow peer was still
    # out when the assembly failed: its request was cancelled, not left running, not logged.
    assert ("out", social.node_id, "fragments.request", "ok") in exchanges
    assert all(peer != slow.node_id for _, peer, _, _ in exchanges)
    pending = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__.endswith("ask")]  # type: ignore[union-attr]
    assert pending == []


async def test_a_cancelled_assembly_still_logs_what_finished(
    world: tuple[RunningNode, RunningNode, FakePeer, FakePeer, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    school, social, slow, badfrag, plan_id = world
    school.node.config.assembly.deadline_s = 20.0
    checked_replies: set[str] = set()
    check = assembly._check_reply

    def noting_check(node: Any, result: Any, *args: Any) -> Any:
        outcome = check(node, result, *args)
        checked_replies.add(result.peer)  # the caller records what follows before it awaits
        return outcome

    monkeypatch.setattr(assembly, "_check_reply", noting_check)
    before = len(await log_rows(school))
    task = asyncio.create_task(assemble(school.node, lead(school), plan_id))
    answered = {social.node_id, badfrag.node_id}
    await wait_until_async(
        lambda: "fragments.request" in slow.received and answered <= checked_replies,
        timeout=10,
        what=lambda: (
            f"the slow peer asked and both replies checked: {slow.received=} {checked_replies=}"
        ),
    )
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    exchanges = fragment_exchanges((await log_rows(school))[before:])
    assert ("out", social.node_id, "fragments.request", "ok") in exchanges
    assert ("out", badfrag.node_id, "fragments.request", "ok") in exchanges
    assert ("in", badfrag.node_id, "fragments.response", "bad_reply") in exchanges
    assert all(peer != slow.node_id for _, peer, _, _ in exchanges)
