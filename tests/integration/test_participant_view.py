"""Every participant sees the plan its consent allows (issue 17).

Three real nodes on loopback: social services (IFO) leads, the school and BUP take part. A
professional at the school assembles the plan: its node asks the lead node and BUP under the
consent it was sent, each holder decides, and the school is shown exactly what the grants to the
school allow, plus what it is not shown and why. Both sides log every request; nothing received
is stored at the school. A colleague at the lead node (not the lead) sees the lead's view; an
operator and a node that does not take part are refused.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from node.store import records
from node.store.tables import ExchangeLogEntry
from tests.support.federation import RunningNode
from tests.support.plans import create_plan, plan_led_by_social

LOG = ExchangeLogEntry.__table__  # type: ignore[attr-defined]


def by_node(shared: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["node_id"]: p for p in shared["participants"]}


async def log_rows(node: RunningNode, plan_id: str) -> list[dict[str, Any]]:
    async with node.node.engine.connect() as conn:
        rows = await conn.execute(
            select(LOG)
            .where(LOG.c.plan_id == plan_id)
            .where(LOG.c.message_type == "fragments.request")
        )
        return [dict(r._mapping) for r in rows]


async def test_a_school_professional_sees_exactly_what_the_consent_grants_the_school(
    trio: list[RunningNode],
) -> None:
    school, social, bup = trio
    plan_id, consent_id = await plan_led_by_social(trio)

    status, shared = await school.api("GET", f"/plans/{plan_id}/shared", "prof")
    assert status == 200, shared
    assert shared["viewer"] == {"node_id": school.node_id, "role": "participant"}
    assert shared["lead_node"] == social.node_id
    assert shared["consent"]["consent_id"] == consent_id
    parts = by_node(shared)
    assert parts[school.node_id]["viewer"] is True
    assert parts[school.node_id]["categories"] == ["education"]  # its own, from its own store
    assert parts[social.node_id]["role"] == "lead"
    assert parts[social.node_id]["status"] == "included"
    assert parts[social.node_id]["requested"] == ["social"]
    assert parts[social.node_id]["categories"] == ["social"]
    assert parts[social.node_id]["not_granted"] == [
        {"category": "family", "reason": "category_not_granted"}
    ]
    assert parts[bup.node_id]["categories"] == ["mental_health"]
    assert parts[bup.node_id]["not_granted"] == [
        {"category": "health", "reason": "category_not_granted"}
    ]
    text = json.dumps(shared, ensure_ascii=False)
    for shown in ("SOC-SOCIAL", "BUP-MH", "SKO-EDU"):
        assert shown in text
    for hidden in ("SOC-FAMILY", "BUP-HEALTH", "Intern anteckning"):
        assert hidden not in text
    assert {(n["node_id"], n["reason"], tuple(n["categories"])) for n in shared["not_shown"]} == {
        (social.node_id, "category_not_granted", ("family",)),
        (bup.node_id, "category_not_granted", ("health",)),
    }
    assert shared["not_granted"] == ["education", "health", "family", "police", "leisure"]

    # each holder decided and logged the request; the school logged what it asked
    asked = await log_rows(school, plan_id)
    assert {(r["direction"], r["peer"], r["categories"]) for r in asked} == {
        ("out", social.node_id, "social"),
        ("out", bup.node_id, "mental_health"),
    }
    for holder, category in ((social, "social"), (bup, "mental_health")):
        [row] = await log_rows(holder, plan_id)
        assert (row["direction"], row["peer"], row["outcome"]) == ("in", school.node_id, "released")
        assert row["categories"] == category and row["released"] == 1
        assert row["professional"] == f"{school.node_id}/u/prof"

    # nothing received is stored at the school: only its own fragments are in its store
    async with school.node.engine.connect() as conn:
        own = await conn.run_sync(records.latest_fragments_sync, plan_id, None)
    assert list(own) == ["education"]

    # the lead's view stays the fullest
    status, full = await social.api("GET", f"/plans/{plan_id}/shared", "lead")
    assert status == 200, full
    assert by_node(full)[bup.node_id]["categories"] == ["health", "mental_health"]
    assert "SOC-FAMILY" in json.dumps(full, ensure_ascii=False)
    assert full["viewer"] == {"node_id": social.node_id, "role": "lead"}


async def test_a_colleague_at_the_lead_node_sees_the_leads_view_and_others_are_refused(
    trio: list[RunningNode],
) -> None:
    school, social, bup = trio
    plan_id, _ = await plan_led_by_social(trio)

    status, colleague = await social.api("GET", f"/plans/{plan_id}/shared", "prof")
    assert status == 200, colleague
    status, lead = await social.api("GET", f"/plans/{plan_id}/shared", "lead")
    assert status == 200
    assert {p: v.get("categories") for p, v in by_node(colleague).items()} == {
        p: v.get("categories") for p, v in by_node(lead).items()
    }

    # the FHIR export and the family's copy speak for the whole plan: the lead node's only
    status, problem = await school.api("GET", f"/plans/{plan_id}/shared.fhir", "lead")
    assert status == 404 and problem["code"] == "no_led_plan", problem
    status, _ = await social.api("GET", f"/plans/{plan_id}/shared.fhir", "lead")
    assert status == 200

    # operators never see plan content
    for node in (social, school):
        status, problem = await node.api("GET", f"/plans/{plan_id}/shared", "ops")
        assert status == 403, problem

    # an invitation not linked yet, then declined: refused, saying which
    pending_plan = await create_plan(
        social, (await social.api("GET", "/children", "prof"))[1][0]["child_id"], [bup.node_id]
    )
    status, problem = await bup.api("GET", f"/plans/{pending_plan}/shared", "prof")
    assert status == 403 and problem["code"] == "invitation_not_linked", problem
    status, _ = await bup.api("POST", f"/invitations/{pending_plan}/decline", "prof")
    assert status in (200, 201)
    status, problem = await bup.api("GET", f"/plans/{pending_plan}/shared", "prof")
    assert status == 403 and problem["code"] == "not_taking_part", problem

    # a plan this node does not take part in: a clear refusal
    status, problem = await bup.api(
        "GET", "/plans/4d1c1c7e-4e2a-4c55-9a55-000000000000/shared", "prof"
    )
    assert status == 404 and problem["code"] == "not_taking_part", problem
