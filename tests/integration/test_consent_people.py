"""Consent as people, over real sockets: an incomplete consent is withheld at every holder
(``consenter_missing``) and shown as waiting for the person by name; completing it is one step
(one person's answer) that signs a statement replacing the earlier one, after which holders
release, and a request under the replaced consent is withheld ``consent_replaced``
(SPEC.md §7.3, §11). Only the plan's own lead can replace its consent."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from rich.console import Console

from node.cli.shared_view import render_shared_plan
from node.services import consent_people
from node.services.assembly import assemble
from node.store import consent_people as people_store
from node.store import records
from node.store.tables import User
from protocol.clock import ManualClock, format_time
from protocol.documents import sign_consent
from tests.support.federation import RunningNode
from tests.support.plans import add_child, add_fragment, create_linked_plan, rich_fragment


@dataclass
class World:
    school: RunningNode
    social: RunningNode
    bup: RunningNode
    plan_id: str
    lead: User


async def _lead(node: RunningNode) -> User:
    user = await records.user_by_id(node.node.engine, "lead")
    assert user is not None
    return user


def people(second_answer: str = "not_asked") -> list[dict[str, Any]]:
    """Two guardians (both required) and the child (her view recorded, not required)."""
    second: dict[str, Any] = {"name": "Bertil Testsson", "role": "guardian", "required": True}
    if second_answer == "consents":
        second.update(answer="consents", answered_on="2026-11-20", method="e_form")
    else:
        second.update(answer=second_answer)
    return [
        {
            "name": "Anna Testsson",
            "role": "guardian",
            "required": True,
            "answer": "consents",
            "answered_on": "2026-11-20",
            "method": "signed_form",
            "form_ref": "Blankett 2026-117",
        },
        second,
        {
            "name": "Kim Testsson",
            "role": "child",
            "required": False,
            "answer": "consents",
            "answered_on": "2026-11-20",
            "method": "meeting",
            "age": "12",
            "maturity": "Förstår vad samtycket innebär",
            "view": "Vill att skolan och BUP pratar med varandra",
        },
    ]


async def build(trio: list[RunningNode], clock: ManualClock) -> World:
    school, social, bup = trio
    child = await add_child(school)
    await add_child(social)
    await add_child(bup)
    plan_id = await create_linked_plan(school, child, [social, bup])
    await add_fragment(social, plan_id, rich_fragment("social", "SOC", "nurtured"))
    await add_fragment(bup, plan_id, rich_fragment("mental_health", "BUP", "healthy"))
    return World(school, social, bup, plan_id, await _lead(school))


async def record_incomplete(world: World, clock: ManualClock) -> dict[str, Any]:
    now = clock.now()
    return await consent_people.record_consent_people(
        world.school.node,
        world.lead,
        world.plan_id,
        people=people(),
        grants=[
            {"from": world.social.node_id, "to": [world.school.node_id], "categories": ["social"]},
            {
                "from": world.bup.node_id,
                "to": [world.school.node_id],
                "categories": ["mental_health"],
            },
        ],
        purpose="sip",
        valid_from=format_time(now - timedelta(days=1)),
        valid_until=format_time(now + timedelta(days=365)),
        evidence_ref="Samtyckesblankett (test)",
    )


def peer_entry(shared: dict[str, Any], node_id: str) -> dict[str, Any]:
    [entry] = [p for p in shared["participants"] if p["node_id"] == node_id]
    return entry


async def test_an_incomplete_consent_is_withheld_until_one_answer_completes_it(
    trio: list[RunningNode], clock: ManualClock
) -> None:
    world = await build(trio, clock)
    first = await record_incomplete(world, clock)
    statement = first["statement"]
    # the wire carries references and roles, never names
    assert [c["ref"] for c in statement["required"]] == ["p1", "p2"]
    assert {c["ref"] for c in statement["given_by"]} == {"p1", "p3"}
    assert "Testsson" not in str(statement)
    assert first["waiting_for"] == ["Bertil Testsson"]
    assert {d["status"] for d in first["distribution"]} == {"stored"}
    overview = await consent_people.consent_overview(world.school.node, world.plan_id)
    assert (overview["state"], overview["waiting_for"]) == ("incomplete", ["Bertil Testsson"])

    status, shared = await world.school.api("GET", f"/plans/{world.plan_id}/shared", "lead")
    assert status == 200 and shared["consent"]["waiting_for"] == ["Bertil Testsson"]
    console = Console(record=True, width=200, highlight=False, color_system=None)
    render_shared_plan(shared, console)  # barnplan plan show
    out = console.export_text()
    assert "Ofullständigt – väntar på Bertil Testsson" in out and "Aktiv (active)" not in out
    for holder in (world.social, world.bup):
        entry = peer_entry(shared, holder.node_id)
        assert entry["status"] == "withheld"
        assert {w["reason"] for w in entry["withheld"]} == {"consenter_missing"}

    # one step: the missing guardian's answer
    second = await consent_people.record_answer(
        world.school.node,
        world.lead,
        world.plan_id,
        "p2",
        answer="consents",
        answered_on="2026-11-21",
        method="e_form",
    )
    assert second["statement"]["replaces"] == statement["consent_id"]
    assert second["waiting_for"] == []
    assert {d["status"] for d in second["distribution"]} == {"stored"}
    assert second["statement"]["grants"] == statement["grants"]
    overview = await consent_people.consent_overview(world.school.node, world.plan_id)
    assert overview["state"] == "in_force"
    assert overview["current"]["consent_id"] == second["consent_id"]

    shared = await assemble(world.school.node, world.lead, world.plan_id)
    assert shared["consent"]["consent_id"] == second["consent_id"]
    for holder in (world.social, world.bup):
        assert peer_entry(shared, holder.node_id)["status"] == "included"

    # every holder marked the first consent replaced: a request under it is withheld
    for holder in (world.social, world.bup):
        async with holder.node.store.reading() as conn:
            assert await people_store.is_replaced(conn, statement["consent_id"], world.plan_id)
    old = await assemble(
        world.school.node, world.lead, world.plan_id, consent_id=statement["consent_id"]
    )
    for holder in (world.social, world.bup):
        entry = peer_entry(old, holder.node_id)
        assert entry["status"] == "withheld"
        assert {w["reason"] for w in entry["withheld"]} == {"consent_replaced"}


async def test_a_person_who_declines_keeps_the_consent_incomplete(
    trio: list[RunningNode], clock: ManualClock
) -> None:
    world = await build(trio, clock)
    await record_incomplete(world, clock)
    result = await consent_people.record_answer(
        world.school.node,
        world.lead,
        world.plan_id,
        "p2",
        answer="declines",
        answered_on="2026-11-21",
        method="meeting",
    )
    assert result["waiting_for"] == ["Bertil Testsson"]
    shared = await assemble(world.school.node, world.lead, world.plan_id)
    entry = peer_entry(shared, world.social.node_id)
    assert {w["reason"] for w in entry["withheld"]} == {"consenter_missing"}


def _statement(
    lead: RunningNode, plan_id: str, replaces: str, clock: ManualClock, consent_id: str = ""
) -> Any:
    now = clock.now()
    return sign_consent(
        {
            "consent_id": consent_id or str(uuid.uuid4()),
            "plan_id": plan_id,
            "lead": lead.node_id,
            "purpose": "sip",
            "required": [{"ref": "p1", "role": "guardian"}],
            "given_by": [{"ref": "p1", "role": "guardian"}],
            "grants": [{"from": lead.node_id, "to": [lead.node_id], "categories": ["social"]}],
            "valid_from": format_time(now - timedelta(days=1)),
            "valid_until": format_time(now + timedelta(days=30)),
            "evidence_ref": "x",
            "recorded_by": f"{lead.node_id}/u/lead",
            "issued_at": format_time(now),
            "replaces": replaces,
        },
        lead.node.identity.key,
    )


async def test_a_peer_that_does_not_lead_the_plan_cannot_replace_its_consent(
    trio: list[RunningNode], clock: ManualClock
) -> None:
    world = await build(trio, clock)
    first = await record_incomplete(world, clock)
    consent_id = first["consent_id"]
    social, bup = world.social, world.bup
    # social services, a participant of the plan, signs a "replacing" statement of its own
    forged = _statement(social, world.plan_id, consent_id, clock)
    result = await social.node.peers.send(bup.node_id, "consent.statement", {"statement": forged})
    assert (result.outcome, result.reason) == ("refused", "plan_unknown")
    # social services leads a plan of its own with BUP, and names the other plan's consent
    child = await add_child(social, "Other Child", "20140101-2388")
    await add_child(bup, "Other Child", "20140101-2388")
    own_plan = await create_linked_plan(social, child, [bup])
    forged = _statement(social, own_plan, consent_id, clock)
    result = await social.node.peers.send(bup.node_id, "consent.statement", {"statement": forged})
    assert (result.outcome, result.reason) == ("refused", "consent_other_plan")
    async with bup.node.store.reading() as conn:
        assert not await people_store.is_replaced(conn, consent_id, world.plan_id)
        assert await records.consent_statement(conn, forged["consent_id"]) is None


async def test_a_statement_cannot_replace_itself(
    trio: list[RunningNode], clock: ManualClock
) -> None:
    world = await build(trio, clock)
    own_id = str(uuid.uuid4())
    statement = _statement(world.school, world.plan_id, own_id, clock, consent_id=own_id)
    result = await world.school.node.peers.send(
        world.social.node_id, "consent.statement", {"statement": statement}
    )
    assert (result.outcome, result.reason) == ("refused", "malformed")


@pytest.mark.parametrize("answer", ["consents", "declines"])
async def test_an_answer_without_when_and_how_is_refused_at_its_fields(
    trio: list[RunningNode], clock: ManualClock, answer: str
) -> None:
    from node.errors import InvalidInput

    world = await build(trio, clock)
    await record_incomplete(world, clock)
    with pytest.raises(InvalidInput) as caught:
        await consent_people.record_answer(
            world.school.node,
            world.lead,
            world.plan_id,
            "p2",
            answer=answer,
            answered_on="",
            method="",
        )
    assert {k: p.code for k, p in caught.value.fields.items()} == {
        "answered_on": "answer_date_missing",
        "method": "answer_method_missing",
    }
