"""Revocation reaches every peer: notices and acks, duplicates, replays, tombstones."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from node.services.outbound import PeerResult
from node.services.revocation import catch_up
from node.store import records
from node.store.tables import ExchangeLogEntry, RevocationRecord
from protocol.clock import ManualClock, format_time
from protocol.documents import sign_consent
from protocol.envelope import sign_envelope
from protocol.messages import FragmentsRequest, RevocationsList
from tests.conftest import StoreFactory
from tests.integration.test_release_flow import add_child, consent_body, fragment
from tests.support.fakepeer import FakePeer
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
from tests.support.waiting import wait_until_async

T_REVOCATION = RevocationRecord.__table__  # type: ignore[attr-defined]


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
    async def refused() -> bool:
        released, reasons = await ask(requester, holder, plan_id, consent_id, category)
        return released == 0 and reasons == ["consent_revoked"]

    await wait_until_async(
        refused, timeout=within, what=f"{holder.node_id} refuses (it still releases)", interval=0.05
    )


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


# --- a member gone bad: revocations the holder's own records do not admit ------------------------

ROGUE = "rogue.test.se"


def notice_from(sender: str, consent_id: str, plan_id: str, clock: ManualClock) -> dict[str, Any]:
    """A ``consent.revoke`` body as ``sender`` would sign it, naming ``plan_id``."""
    return {
        "notice_id": str(uuid.uuid4()),
        "consent_id": consent_id,
        "plan_id": plan_id,
        "revoked_at": format_time(clock.now()),
        "revoked_by": sender,
        "professional": f"{sender}/u/prof",
    }


async def revocation_rows(node: RunningNode) -> list[tuple[str, str, str]]:
    """(consent, plan, revoked by) of every revocation and tombstone ``node`` holds."""
    async with node.node.engine.connect() as conn:
        rows = (await conn.execute(select(T_REVOCATION).order_by(T_REVOCATION.c.seq))).all()
    return [(r.consent_id, r.plan_id, r.revoked_by) for r in rows]


async def last_inbound(node: RunningNode, message_type: str) -> ExchangeLogEntry:
    rows = [r for r in await log_rows(node) if r.direction == "in"]
    return [r for r in rows if r.message_type == message_type][-1]


async def plan_led_by(lead: RunningNode, participants: list[RunningNode]) -> str:
    """A plan ``lead`` leads for the child, every participant linked (they have the child)."""
    children = (await lead.api("GET", "/children", "prof"))[1]
    child_id = children[0]["child_id"] if children else await add_child(lead)
    status, plan = await lead.api(
        "POST",
        "/plans",
        "lead",
        {"child_id": child_id, "participants": [p.node_id for p in participants]},
    )
    assert status == 201, plan
    for participant in participants:  # a professional at each links (SPEC §7.1)
        await link_invitation(participant, plan["plan_id"])
    status, view = await lead.api("GET", f"/plans/{plan['plan_id']}", "lead")
    assert {p["status"] for p in view["participants"]} == {"lead", "linked"}, view
    return str(plan["plan_id"])


async def assert_refused_and_nothing_revoked(
    result: PeerResult, holder: RunningNode, reason: str, still: tuple[RunningNode, str, str, str]
) -> None:
    """A signed refusal with ``reason``, logged; no revocation stored; ``still`` (requester,
    plan, consent, category) is released by the holder as before."""
    assert (result.outcome, result.reason) == ("refused", reason), result
    row = await last_inbound(holder, "consent.revoke")
    assert (row.outcome, row.reason) == ("refused", reason)
    assert await revocation_rows(holder) == []
    requester, plan_id, consent_id, category = still
    assert await ask(requester, holder, plan_id, consent_id, category) == (1, [])


async def test_a_member_outside_the_plan_naming_a_plan_the_holder_does_not_know_revokes_nothing(
    four: list[RunningNode], clock: ManualClock
) -> None:
    """Police takes part in no plan of social services; its notice names a made-up plan and
    the consent of the school's plan. The holder knows no such plan: refused, nothing kept."""
    school, social, bup, police = four
    plan_id, consent_id = await plan_with_consent([school, social, bup])
    bogus = notice_from(police.node_id, consent_id, str(uuid.uuid4()), clock)
    result = await police.node.peers.send(social.node_id, "consent.revoke", bogus)
    await assert_refused_and_nothing_revoked(
        result, social, "plan_unknown", (school, plan_id, consent_id, "social")
    )


async def test_a_member_naming_its_own_plan_cannot_revoke_a_consent_of_another_plan(
    four: list[RunningNode], clock: ManualClock
) -> None:
    """Police leads a plan of its own with social services in it, so it does take part in the
    plan its notice names; the consent is of the school's plan, which police is not in."""
    school, social, bup, police = four
    plan_id, consent_id = await plan_with_consent([school, social, bup])
    own_plan = await plan_led_by(police, [social])
    bogus = notice_from(police.node_id, consent_id, own_plan, clock)
    result = await police.node.peers.send(social.node_id, "consent.revoke", bogus)
    await assert_refused_and_nothing_revoked(
        result, social, "consent_other_plan", (school, plan_id, consent_id, "social")
    )
    # the lead is told the same by its own records: police is not in the school's plan
    at_lead = notice_from(police.node_id, consent_id, plan_id, clock)
    result = await police.node.peers.send(school.node_id, "consent.revoke", at_lead)
    await assert_refused_and_nothing_revoked(
        result, school, "not_participant", (social, plan_id, consent_id, "education")
    )


async def test_a_tombstone_binds_to_the_plan_it_names_and_never_revokes_a_consent_of_another(
    four: list[RunningNode], clock: ManualClock
) -> None:
    """Social services misses the statement of the school's consent C. Police, lead of a plan
    social services is also in, sends a tombstone for C naming its own plan: kept, but bound to
    that plan. When C's statement arrives it is stored and releases; C's own revocation, by
    the school, is still recorded and then withholds."""
    school, social, bup, police = four
    plan_id, _ = await plan_with_consent([school, social, bup])
    own_plan = await plan_led_by(police, [social])
    await social.stop()
    grants = [{"from": social.node_id, "to": [school.node_id], "categories": ["social"]}]
    status, consent = await school.api(
        "POST", f"/plans/{plan_id}/consents", "lead", consent_body(grants)
    )
    assert status == 201, consent
    await social.start()
    consent_id = consent["consent_id"]

    planted = notice_from(police.node_id, consent_id, own_plan, clock)
    assert (await police.node.peers.send(social.node_id, "consent.revoke", planted)).ok
    assert await revocation_rows(social) == [(consent_id, own_plan, police.node_id)]

    late = await school.node.peers.send(
        social.node_id, "consent.statement", {"statement": consent["statement"]}
    )
    assert late.ok and late.reply is not None, late
    assert late.reply.body.status == "stored"  # type: ignore[attr-defined]
    assert await ask(school, social, plan_id, consent_id, "social") == (1, [])

    status, revoked = await school.api("POST", f"/consents/{consent_id}/revoke", "lead")
    assert status == 201, revoked
    await wait_until_refused(school, social, plan_id, consent_id, "social", within=2.0)
    assert (consent_id, plan_id, school.node_id) in await revocation_rows(social)


async def test_a_consent_id_held_for_another_plan_is_refused_not_acknowledged(
    four: list[RunningNode], clock: ManualClock
) -> None:
    """Police, lead of a plan social services is in, gets a statement under the id of the
    school's consent C to social services first. The school's own statement of C is then
    refused ``consent_other_plan`` (it was acknowledged ``already_stored``, so the school
    believed C had arrived); the first statement stays, unchanged."""
    school, social, bup, police = four
    plan_id, _ = await plan_with_consent([school, social, bup])
    own_plan = await plan_led_by(police, [social])
    await social.stop()
    grants = [{"from": social.node_id, "to": [school.node_id], "categories": ["social"]}]
    status, consent = await school.api(
        "POST", f"/plans/{plan_id}/consents", "lead", consent_body(grants)
    )
    assert status == 201, consent
    await social.start()
    consent_id = consent["consent_id"]
    fields = {k: v for k, v in consent["statement"].items() if k not in ("v", "type", "sig")}
    fields |= {"plan_id": own_plan, "lead": police.node_id, "recorded_by": f"{police.node_id}/u/x"}
    grants = [{"from": social.node_id, "to": [police.node_id], "categories": ["social"]}]
    first = sign_consent(fields | {"grants": grants}, police.node.identity.key)
    pre = await police.node.peers.send(social.node_id, "consent.statement", {"statement": first})
    assert pre.ok, pre

    late = await school.node.peers.send(
        social.node_id, "consent.statement", {"statement": consent["statement"]}
    )
    assert (late.outcome, late.reason) == ("refused", "consent_other_plan"), late
    async with social.node.engine.connect() as conn:
        held = await records.consent_statement(conn, consent_id)
    assert held == first


# --- catch-up from a member gone bad ------------------------------------------------------------


@pytest.fixture
async def rogue(four: list[RunningNode], clock: ManualClock) -> AsyncIterator[FakePeer]:
    """A trusted federation member (real key, real signed replies) that the school trusts."""
    peer = FakePeer(ROGUE, "good", clock)
    await peer.start()
    await peer.trusted_by(four[0])
    try:
        yield peer
    finally:
        await peer.stop()


def listed(seq: int, consent_id: str, plan_id: str, by: str, clock: ManualClock) -> dict[str, Any]:
    return {
        "seq": seq,
        "consent_id": consent_id,
        "plan_id": plan_id,
        "revoked_at": format_time(clock.now()),
        "revoked_by": by,
    }


def skipped(node: RunningNode, reason: str) -> float:
    value = node.node.metrics.registry.get_sample_value(
        "barnplan_catchup_revocations_skipped_total", {"reason": reason}
    )
    return value or 0.0


async def test_catch_up_applies_only_revocations_the_listing_peer_may_pass_on(
    four: list[RunningNode], rogue: FakePeer, clock: ManualClock
) -> None:
    """The rogue member lists revocations of the school's plan, which it is not in: one it
    claims to have made itself, one it says social services made. The school's catch-up
    applies neither (the plan stays active and releases), counts both; a revocation the rogue
    recorded in a plan it does take part in is applied."""
    school, social, bup, _ = four
    plan_id, consent_id = await plan_with_consent([school, social, bup])
    child_id = (await school.api("GET", "/children", "prof"))[1][0]["child_id"]
    status, joined = await school.api(
        "POST", "/plans", "lead", {"child_id": child_id, "participants": [ROGUE]}
    )
    assert status == 201, joined
    grants = [{"from": ROGUE, "to": [school.node_id], "categories": ["leisure"]}]
    status, its_consent = await school.api(
        "POST", f"/plans/{joined['plan_id']}/consents", "lead", consent_body(grants)
    )
    assert status == 201, its_consent
    rogue.revocations = [
        listed(1, consent_id, plan_id, ROGUE, clock),
        listed(2, consent_id, plan_id, social.node_id, clock),
        listed(3, its_consent["consent_id"], joined["plan_id"], ROGUE, clock),
    ]

    outcomes = await catch_up(school.node)
    assert outcomes[ROGUE] == "ok", outcomes

    assert await revocation_rows(school) == [(its_consent["consent_id"], joined["plan_id"], ROGUE)]
    assert skipped(school, "not_participant") == 2
    status, shared = await school.api("GET", f"/plans/{plan_id}/shared", "lead")
    assert status == 200 and shared["status"] == "active", shared
    assert await ask(social, school, plan_id, consent_id, "education") == (1, [])


async def test_catch_up_lists_only_what_the_listing_node_may_pass_on(
    four: list[RunningNode],
) -> None:
    """The school (lead) revokes; social services has the notice. Asked by BUP, social services
    lists nothing (it did not record the revocation and does not lead the plan, so BUP would
    not apply it from social services); the school lists it."""
    school, social, bup, _ = four
    plan_id, consent_id = await plan_with_consent(four)
    status, result = await school.api("POST", f"/consents/{consent_id}/revoke", "lead")
    assert status == 201, result
    await wait_until_refused(bup, social, plan_id, consent_id, "social", within=2.0)

    page = await bup.node.peers.send(social.node_id, "revocations.since", {"cursor": 0})
    assert page.ok and isinstance(page.reply and page.reply.body, RevocationsList), page
    assert page.reply is not None and page.reply.body.revocations == []  # type: ignore[attr-defined]
    page = await bup.node.peers.send(school.node_id, "revocations.since", {"cursor": 0})
    assert page.ok and page.reply is not None, page
    assert [(r.consent_id, r.plan_id, r.revoked_by) for r in page.reply.body.revocations] == [  # type: ignore[attr-defined]
        (consent_id, plan_id, school.node_id)
    ]
