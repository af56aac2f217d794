"""Three real nodes on loopback: invite → link → consent → request → the right fragments arrive."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp

from node.services.outbound import FEDERATION_PATH
from protocol.envelope import sign_envelope
from tests.support.federation import RunningNode
from tests.support.plans import link_invitation

CHILD_PNR = "20150315-2389"  # synthetic test identity (valid Luhn)
CHILD_NAME = "Testa Testsson"


def fragment(category: str, marker: str, indicator: str = "safe") -> dict[str, Any]:
    return {
        "category": category,
        "indicators": [indicator],
        "content": {
            "summary": f"Sammanfattning {marker}",
            "needs": [{"what": f"Behov {marker}"}],
            "goals": [{"what": f"Mål {marker}", "by": "2027-06-01"}],
            "actions": [
                {
                    "what": f"Insats {marker}",
                    "who": "Kurator",
                    "start": "2026-12-01",
                    "end": "2027-03-01",
                    "status": "planned",
                }
            ],
            "child_view": f"Barnets röst {marker}",
            "next_review": "2027-02-01",
        },
    }


async def add_child(node: RunningNode, name: str = CHILD_NAME, pnr: str = CHILD_PNR) -> str:
    status, body = await node.api("POST", "/children", "prof", {"name": name, "personnummer": pnr})
    assert status == 201, body
    return str(body["child_id"])


async def setup_plan(nodes: list[RunningNode]) -> tuple[str, dict[str, str]]:
    """School leads; social services and BUP each have the child on record, and a professional
    at each links the invitation. Returns the plan id and each participant's status at the lead."""
    school, social, bup = nodes
    child = await add_child(school)
    await add_child(social)
    await add_child(bup)
    status, plan = await school.api(
        "POST",
        "/plans",
        "lead",
        {
            "child_id": child,
            "participants": [social.node_id, bup.node_id],
            "purpose": "sip",
            "reason": "Oro för skolfrånvaro",
        },
    )
    assert status == 201, plan
    for node in (social, bup):
        await link_invitation(node, plan["plan_id"])
    status, view = await school.api("GET", f"/plans/{plan['plan_id']}", "lead")
    assert status == 200, view
    statuses = {p["node_id"]: p["status"] for p in view["participants"]}
    return plan["plan_id"], statuses


def consent_body(
    grants: list[dict[str, Any]], given: tuple[str, ...] = ("vh1", "vh2"), **overrides: Any
) -> dict[str, Any]:
    body = {
        "required": [{"ref": "vh1", "role": "guardian"}, {"ref": "vh2", "role": "guardian"}],
        "given_by": [{"ref": g, "role": "guardian"} for g in given],
        "grants": grants,
        "purpose": "sip",
        "valid_from": "2026-11-01T00:00:00Z",
        "valid_until": "2027-11-01T00:00:00Z",
        "evidence_ref": "Samtyckesblankett 2026-11-22",
    }
    body.update(overrides)
    return body


async def test_invite_link_consent_and_release(trio: list[RunningNode]) -> None:
    school, social, bup = trio
    plan_id, statuses = await setup_plan(trio)
    assert statuses == {school.node_id: "lead", social.node_id: "linked", bup.node_id: "linked"}

    for node, category, marker in (
        (social, "social", "SOC-1"),
        (bup, "mental_health", "BUP-1"),
        (bup, "health", "BUP-2"),
        (school, "education", "SKO-1"),
    ):
        status, body = await node.api(
            "POST", f"/plans/{plan_id}/fragments", "prof", fragment(category, marker)
        )
        assert status == 201, body

    grants = [
        {"from": social.node_id, "to": [school.node_id], "categories": ["social"]},
        {"from": bup.node_id, "to": [school.node_id], "categories": ["mental_health"]},
    ]
    status, consent = await school.api(
        "POST", f"/plans/{plan_id}/consents", "lead", consent_body(grants)
    )
    assert status == 201, consent
    assert {d["node_id"]: d["status"] for d in consent["distribution"]} == {
        social.node_id: "stored",
        bup.node_id: "stored",
    }

    status, shared = await school.api("GET", f"/plans/{plan_id}/shared", "lead")
    assert status == 200, shared
    by_node = {p["node_id"]: p for p in shared["participants"]}
    assert by_node[social.node_id]["status"] == "included"
    assert by_node[social.node_id]["categories"] == ["social"]
    assert by_node[bup.node_id]["status"] == "included"
    assert by_node[bup.node_id]["categories"] == ["mental_health"]
    origins = {(f["origin"], f["category"]) for f in shared["fragments"]}
    assert origins == {
        (social.node_id, "social"),
        (bup.node_id, "mental_health"),
        (school.node_id, "education"),
    }
    assert all(f["signature_verified"] for f in shared["fragments"])
    texts = {n["what"] for n in shared["indicators"]["safe"]["needs"]}
    assert texts == {"Behov SOC-1", "Behov BUP-1", "Behov SKO-1"}  # BUP-2 (health) not granted


async def test_pending_invitation_is_linked_by_a_professional(trio: list[RunningNode]) -> None:
    school, social, bup = trio
    child = await add_child(school)
    await add_child(bup)
    # social services has no record yet, so the invitation waits for a professional
    status, plan = await school.api(
        "POST", "/plans", "lead", {"child_id": child, "participants": [social.node_id, bup.node_id]}
    )
    assert status == 201
    statuses = {p["node_id"]: p["status"] for p in plan["participants"]}
    assert statuses[social.node_id] == "pending" and statuses[bup.node_id] == "pending"
    status, pending = await social.api("GET", "/invitations", "prof")
    assert [(p["plan_id"], p["matches"]) for p in pending] == [(plan["plan_id"], [])]
    local = await add_child(social)
    status, pending = await social.api("GET", "/invitations", "prof")
    assert [p["matches"] for p in pending] == [[local]]  # now it matches the new record
    status, linked = await social.api(
        "POST", f"/invitations/{plan['plan_id']}/link", "prof", {"child_id": local}
    )
    assert status == 201, linked
    assert linked["lead_notified"] == "ok"
    status, view = await school.api("GET", f"/plans/{plan['plan_id']}", "lead")
    assert {p["node_id"]: p["status"] for p in view["participants"]}[social.node_id] == "linked"
    status, pending = await social.api("GET", "/invitations", "prof")
    assert pending == []


async def test_one_guardian_of_two_releases_nothing(trio: list[RunningNode]) -> None:
    school, social, _ = trio
    plan_id, _ = await setup_plan(trio)
    await social.api("POST", f"/plans/{plan_id}/fragments", "prof", fragment("social", "S"))
    grants = [{"from": social.node_id, "to": [school.node_id], "categories": ["social"]}]
    await school.api(
        "POST", f"/plans/{plan_id}/consents", "lead", consent_body(grants, given=("vh1",))
    )
    status, shared = await school.api("GET", f"/plans/{plan_id}/shared", "lead")
    assert status == 200, shared
    entry = {p["node_id"]: p for p in shared["participants"]}[social.node_id]
    assert entry["status"] == "withheld"
    assert entry["withheld"] == [{"category": "social", "reason": "consenter_missing"}]
    assert [f for f in shared["fragments"] if f["origin"] == social.node_id] == []


async def test_a_release_on_the_wire_carries_no_internal_note(trio: list[RunningNode]) -> None:
    """Social services' fragment has an internal note. The school's request, signed and POSTed
    over loopback, gets the fragment released: its summary is in the reply's bytes, the note is
    not (it never leaves the agency's node), while social services' own professionals still see
    it in their store."""
    school, social, _ = trio
    plan_id, _ = await setup_plan(trio)
    note, summary = f"NOTE-{uuid.uuid4().hex}", f"SUMMARY-{uuid.uuid4().hex}"
    authored = fragment("social", "SOC-N")
    authored["content"] |= {"summary": summary, "internal_note": note}
    status, body = await social.api("POST", f"/plans/{plan_id}/fragments", "prof", authored)
    assert status == 201 and body["content"]["internal_note"] == note, body
    grants = [{"from": social.node_id, "to": [school.node_id], "categories": ["social"]}]
    status, consent = await school.api(
        "POST", f"/plans/{plan_id}/consents", "lead", consent_body(grants)
    )
    assert status == 201, consent

    request = sign_envelope(
        type="fragments.request",
        body={
            "plan_id": plan_id,
            "consent_id": consent["consent_id"],
            "categories": ["social"],
            "purpose": "sip",
            "professional": f"{school.node_id}/u/lead",
        },
        sender=school.node_id,
        to=social.node_id,
        key=school.node.identity.key,
        clock=school.node.clock,
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(social.url + FEDERATION_PATH, json=request) as resp,
    ):
        assert resp.status == 200
        wire = await resp.read()
    reply = json.loads(wire)
    assert reply["type"] == "fragments.response"
    assert [f["category"] for f in reply["body"]["fragments"]] == ["social"]
    assert summary.encode() in wire
    assert note.encode() not in wire
    assert b"internal_note" not in wire

    status, own = await social.api("GET", f"/plans/{plan_id}/fragments", "prof")
    assert status == 200 and [f["content"]["internal_note"] for f in own] == [note], own
