"""Revocation reaches every peer: notices and acks, duplicates, replays, tombstones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from node.store.tables import ExchangeLogEntry, RevocationRecord
from protocol.clock import ManualClock, format_time
from protocol.envelope import sign_envelope
from protocol.messages import FragmentsRequest
from tests.conftest import StoreFactory
from tests.integration.test_release_flow import add_child, consent_body, fragment
from tests.support.federation import (
    BUP,
    POLICE,
    SCHOOL,
    SOCIAL,
    RunningNode,
    start_federation,
    stop_all,
)
from tests.support.plans import link_invitation


@pytest.fixture
async def four(
    tmp_path: Path, store_factory: StoreFactory, clock: ManualClock
) -> AsyncIterator[list[RunningNode]]:
    nodes = await start_federation(tmp_path, [SCHOOL, SOCIAL, BUP, POLICE], store_factory, clock)
    for n in nodes:
        await asyncio.wait_for(n.node.caught_up.wait(), 10)
    try:
        yield nodes
    finally:
        await stop_all(nodes)


async def plan_with_consent(nodes: list[RunningNode]) -> tuple[str, str]:
    """School leads a plan with all three others; every agency grants its category to all."""
    lead, *others = nodes
    for n in nodes:
        await add_child(n)
    status, plan = await lead.api(
        "POST",
        "/plans",
        "lead",
        {
            "child_id": (await lead.api("GET", "/children", "prof"))[1][0]["child_id"],
            "participants": [o.node_id for o in others],
        },
    )
    assert status == 201, plan
    plan_id = plan["plan_id"]
    for other in others:
        await link_invitation(other, plan_id)
    categories = {
        SCHOOL[0]: "education",
        SOCIAL[0]: "social",
        BUP[0]: "mental_health",
        POLICE[0]: "police",
    }
    for n in nodes:
        status, body = await n.api(
            "POST",
            f"/plans/{plan_id}/fragments",
            "prof",
            fragment(categories[n.node_id], n.node_id),
        )
        assert status == 201, body
    ids = [n.node_id for n in nodes]
    grants = [
        {"from": n, "to": [m for m in ids if m != n], "categories": [categories[n]]} for n in ids
    ]
    status, consent = await lead.api(
        "POST", f"/plans/{plan_id}/consents", "lead", consent_body(grants)
    )
    assert status == 201, consent
    return plan_id, consent["consent_id"]


async def ask(
    requester: RunningNode, holder: RunningNode, plan_id: str, consent_id: str, category: str
) -> tuple[int, list[str]]:
    """``requester`` asks ``holder`` for one category: (fragments released, withheld reasons)."""
    result = await requester.node.peers.send(
        holder.node_id,
        "fragments.request",
        FragmentsRequest.model_validate(
            {
                "plan_id": plan_id,
                "consent_id": consent_id,
                "categories": [category],
                "purpose": "sip",
                "professional": f"{requester.node_id}/u/prof",
            }
        ),
    )
    assert result.ok and result.reply is not None, result
    body: Any = result.reply.body
    return len(body.fragments), [w.reason.value for w in body.withheld]


async def wait_until_refused(
    requester: RunningNode,
    holder: RunningNode,
    plan_id: str,
    consent_id: str,
    category: str,
    within: float,
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        released, reasons = await ask(requester, holder, plan_id, consent_id, category)
        if released == 0 and reasons == ["consent_revoked"]:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{holder.node_id} still releases"
        await asyncio.sleep(0.05)


async def log_rows(node: RunningNode) -> list[ExchangeLogEntry]:
    async with node.node.engine.connect() as conn:
        rows = (await conn.execute(select(ExchangeLogEntry.__table__))).mappings().all()  # type: ignore[attr-defined]
    return [ExchangeLogEntry.model_validate(dict(r)) for r in rows]


async def test_revocation_at_a_participant_reaches_lead_and_all_others(
    four: list[RunningNode],
) -> None:
    school, social, bup, police = four
    plan_id, consent_id = await plan_with_consent(four)
    assert await ask(school, social, plan_id, consent_id, "social") == (1, [])

    status, result = await bup.api("POST", f"/consents/{consent_id}/revoke", "prof")
    assert status == 201, result
    assert sorted(result["notified"]) == sorted([school.node_id, social.node_id, police.node_id])

    await wait_until_refused(school, social, plan_id, consent_id, "social", within=1.0)
    await wait_until_refused(school, police, plan_id, consent_id, "police", within=1.0)
    await wait_until_refused(social, school, plan_id, consent_id, "education", within=1.0)
    await wait_until_refused(school, bup, plan_id, consent_id, "mental_health", within=1.0)

    sent = [r for r in await log_rows(bup) if r.message_type == "consent.revoke"]
    assert sorted(r.peer for r in sent if r.direction == "out" and r.outcome == "ok") == sorted(
        [school.node_id, social.node_id, police.node_id]
    )
    for peer in (school, social, police):
        received = [
            r
            for r in await log_rows(peer)
            if r.message_type == "consent.revoke" and r.direction == "in"
        ]
        assert [(r.peer, r.outcome, r.consent_id) for r in received] == [
            (bup.node_id, "ok", consent_id)
        ]

    status, shared = await school.api("GET", f"/plans/{plan_id}/shared", "lead")
    assert status == 200 and shared["status"] == "revoked" and shared["revoked_at"]
    assert shared["fragments"] == []

    status, again = await bup.api("POST", f"/consents/{consent_id}/revoke", "prof")
    assert status == 409, again


async def test_duplicate_and_out_of_order_notices_are_acknowledged_and_change_nothing(
    four: list[RunningNode],
    clock: ManualClock,
) -> None:
    school, social, bup, _ = four
    plan_id, consent_id = await plan_with_consent(four)
    notice = {
        "notice_id": "5d1c3f7e-0000-4000-8000-000000000001",
        "consent_id": consent_id,
        "plan_id": plan_id,
        "revoked_at": format_time(clock.now()),
        "revoked_by": bup.node_id,
        "professional": f"{bup.node_id}/u/prof",
    }
    for _ in range(2):  # the same notice twice (a retry after a lost ack): ack both times
        result = await bup.node.peers.send(social.node_id, "consent.revoke", notice)
        assert result.ok and result.reply is not None
        assert result.reply.body.notice_id == notice["notice_id"]  # type: ignore[attr-defined]
    # an older notice for the same consent arriving late changes nothing
    late = {
        **notice,
        "notice_id": "5d1c3f7e-0000-4000-8000-000000000002",
        "revoked_at": "2026-11-01T00:00:00Z",
    }
    assert (await bup.node.peers.send(social.node_id, "consent.revoke", late)).ok
    async with social.node.engine.connect() as conn:
        rows = (await conn.execute(select(RevocationRecord.__table__))).mappings().all()  # type: ignore[attr-defined]
    assert [(r["consent_id"], r["notice_id"]) for r in rows] == [(consent_id, notice["notice_id"])]
    assert await ask(school, social, plan_id, consent_id, "social") == (0, ["consent_revoked"])


async def test_a_replayed_notice_envelope_is_refused(
    four: list[RunningNode], clock: ManualClock
) -> None:
    import aiohttp

    _, social, bup, _ = four
    plan_id, consent_id = await plan_with_consent(four)
    envelope = sign_envelope(
        type="consent.revoke",
        body={
            "notice_id": "5d1c3f7e-0000-4000-8000-000000000003",
            "consent_id": consent_id,
            "plan_id": plan_id,
            "revoked_at": format_time(clock.now()),
            "revoked_by": bup.node_id,
            "professional": f"{bup.node_id}/u/prof",
        },
        sender=bup.node_id,
        to=social.node_id,
        key=bup.node.identity.key,
        clock=clock,
    )
    async with aiohttp.ClientSession() as session:
        url = social.url + "/federation/v1/messages"
        async with session.post(url, json=envelope) as first:
            assert first.status == 200
        async with session.post(url, json=envelope) as second:
            assert second.status == 409
            assert (await second.json())["body"]["reason"] == "replayed"


async def test_revocation_before_the_statement_is_a_tombstone_a_late_statement_cannot_undo(
    four: list[RunningNode],
    clock: ManualClock,
) -> None:
    school, social, bup, police = four
    plan_id, _ = await plan_with_consent(four)
    # the lead signs a new consent but the statement reaches social services only later
    await police.stop()
    grants = [{"from": social.node_id, "to": [school.node_id], "categories": ["social"]}]
    await social.stop()
    status, consent = await school.api(
        "POST", f"/plans/{plan_id}/consents", "lead", consent_body(grants)
    )
    assert status == 201
    consent_id = consent["consent_id"]
    await social.start()
    await police.start()
    notice = {
        "notice_id": "5d1c3f7e-0000-4000-8000-000000000004",
        "consent_id": consent_id,
        "plan_id": plan_id,
        "revoked_at": format_time(clock.now()),
        "revoked_by": bup.node_id,
        "professional": f"{bup.node_id}/u/prof",
    }
    assert (await bup.node.peers.send(social.node_id, "consent.revoke", notice)).ok
    late = await school.node.peers.send(
        social.node_id, "consent.statement", {"statement": consent["statement"]}
    )
    assert late.ok and late.reply is not None
    assert late.reply.body.status == "revoked"  # type: ignore[attr-defined]
    assert await ask(school, social, plan_id, consent_id, "social") == (0, ["consent_revoked"])
