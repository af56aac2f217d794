"""Building a plan through the real API: children, plan, fragments with markers, consent.

Markers are unique strings planted in every text field of a fragment's content, so a test can
tell exactly where a fragment's content went (the shared plan, a table, a file) and where not.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from protocol.clock import format_time
from tests.support.federation import RunningNode

CHILD_PNR = "20150315-2389"  # synthetic test identity (valid Luhn)
CHILD_PNR_DIGITS = "201503152389"
CHILD_NAME = "Testa Testsson"


def rich_fragment(category: str, marker: str, indicator: str = "safe") -> dict[str, Any]:
    """A fragment whose every text field (summary, needs, goals, actions, views, events, the
    internal note) carries ``marker``; its four actions cover every action status."""
    return {
        "category": category,
        "indicators": [indicator],
        "content": {
            "summary": f"Sammanfattning {marker}",
            "needs": [
                {"what": f"Behov {marker}"},
                {"what": f"Hälsobehov {marker}", "indicator": "healthy"},
            ],
            "goals": [{"what": f"Mål {marker}", "by": "2027-06-01"}],
            "actions": [
                {
                    "what": f"Insats planerad {marker}",
                    "who": f"Kurator {marker}",
                    "start": "2026-12-01",
                    "end": "2027-03-01",
                    "status": "planned",
                },
                {
                    "what": f"Insats pågår {marker}",
                    "who": "Mentor",
                    "start": "2026-11-01",
                    "status": "ongoing",
                },
                {"what": f"Insats klar {marker}", "who": "Skolsköterska", "status": "done"},
                {
                    "what": f"Insats avbruten {marker}",
                    "who": "Fritidsledare",
                    "end": "2026-10-01",
                    "status": "cancelled",
                    "indicator": "active",
                },
            ],
            "child_view": f"Barnets röst {marker}",
            "family_view": f"Familjens röst {marker}",
            "next_review": "2027-02-01",
            "events": [{"on": "2026-10-15", "what": f"Händelse {marker}"}],
            "internal_note": f"Intern anteckning {marker}",
        },
    }


async def add_child(node: RunningNode, name: str = CHILD_NAME, pnr: str = CHILD_PNR) -> str:
    status, body = await node.api("POST", "/children", "prof", {"name": name, "personnummer": pnr})
    assert status == 201, body
    return str(body["child_id"])


async def create_plan(lead: RunningNode, child_id: str, participants: list[str]) -> str:
    status, plan = await lead.api(
        "POST",
        "/plans",
        "lead",
        {
            "child_id": child_id,
            "participants": participants,
            "purpose": "sip",
            "reason": "Oro för skolfrånvaro",
        },
    )
    assert status == 201, plan
    return str(plan["plan_id"])


async def link_invitation(node: RunningNode, plan_id: str, user: str = "prof") -> str:
    """A professional at ``node`` links the plan's pending invitation to the one child on
    record there that matches it, as every invited agency must (SPEC §7.1: nothing is linked
    automatically); the node tells the lead (``plan.link``). Returns the local child id."""
    status, invitations = await node.api("GET", "/invitations", user)
    assert status == 200, invitations
    [invitation] = [i for i in invitations if i["plan_id"] == plan_id]
    [child_id] = invitation["matches"]
    status, linked = await node.api(
        "POST", f"/invitations/{plan_id}/link", user, {"child_id": child_id}
    )
    assert status == 201 and linked["lead_notified"] == "ok", linked
    return str(child_id)


async def create_linked_plan(
    lead: RunningNode, child_id: str, participants: list[RunningNode]
) -> str:
    """Create a plan led by ``lead`` and have a professional at each participant (which must
    hold the child) link its invitation; returns the plan id."""
    plan_id = await create_plan(lead, child_id, [p.node_id for p in participants])
    for participant in participants:
        await link_invitation(participant, plan_id)
    return plan_id


async def add_fragment(node: RunningNode, plan_id: str, body: dict[str, Any]) -> None:
    status, answer = await node.api("POST", f"/plans/{plan_id}/fragments", "prof", body)
    assert status == 201, answer


def consent_body(
    grants: list[dict[str, Any]], now: datetime, given: tuple[str, ...] = ("vh1", "vh2")
) -> dict[str, Any]:
    """Both guardians required; valid from a day ago for a year (relative to ``now``)."""
    return {
        "required": [{"ref": "vh1", "role": "guardian"}, {"ref": "vh2", "role": "guardian"}],
        "given_by": [{"ref": g, "role": "guardian"} for g in given],
        "grants": grants,
        "purpose": "sip",
        "valid_from": format_time(now - timedelta(days=1)),
        "valid_until": format_time(now + timedelta(days=365)),
        "evidence_ref": "Samtyckesblankett (test)",
    }


async def record_consent(
    lead: RunningNode, plan_id: str, grants: dict[str, list[str]], now: datetime
) -> str:
    """Record consent granting each ``{node: categories}`` to the lead; return the consent id."""
    body = consent_body(
        [{"from": n, "to": [lead.node_id], "categories": c} for n, c in grants.items()], now
    )
    status, consent = await lead.api("POST", f"/plans/{plan_id}/consents", "lead", body)
    assert status == 201, consent
    return str(consent["consent_id"])


async def shared_plan_world(
    lead: RunningNode, social: RunningNode, bup: RunningNode, marker: str = "M"
) -> tuple[str, str]:
    """School leads a plan with social services and BUP (linked by a professional at each), all
    with rich fragments; the consent grants social and mental_health to the lead. Returns
    (plan id, consent id)."""
    child = await add_child(lead)
    await add_child(social)
    await add_child(bup)
    plan_id = await create_linked_plan(lead, child, [social, bup])
    await add_fragment(lead, plan_id, rich_fragment("education", f"SKO-{marker}", "achieving"))
    await add_fragment(social, plan_id, rich_fragment("social", f"SOC-{marker}", "nurtured"))
    await add_fragment(bup, plan_id, rich_fragment("mental_health", f"BUP-{marker}", "healthy"))
    grants = {social.node_id: ["social"], bup.node_id: ["mental_health"]}
    consent_id = await record_consent(lead, plan_id, grants, lead.node.clock.now())
    return plan_id, consent_id


async def plan_led_by_social(trio: list[RunningNode]) -> tuple[str, str]:
    """``trio`` is (school, social services, BUP). IFO leads; the school and BUP take part. IFO
    writes social and family, BUP mental_health and health, the school education. The consent
    grants the school only social (from IFO) and mental_health (from BUP); the lead is granted
    all the others hold; BUP gets family and education. Returns (plan id, consent id)."""
    school, social, bup = trio
    child = await add_child(social)
    await add_child(school)
    await add_child(bup)
    plan_id = await create_linked_plan(social, child, [school, bup])
    await add_fragment(social, plan_id, rich_fragment("social", "SOC-SOCIAL", "nurtured"))
    await add_fragment(social, plan_id, rich_fragment("family", "SOC-FAMILY", "safe"))
    await add_fragment(bup, plan_id, rich_fragment("mental_health", "BUP-MH", "healthy"))
    await add_fragment(bup, plan_id, rich_fragment("health", "BUP-HEALTH", "healthy"))
    await add_fragment(school, plan_id, rich_fragment("education", "SKO-EDU", "achieving"))
    s, ifo, b = school.node_id, social.node_id, bup.node_id
    grants = [
        {"from": b, "to": [ifo, s], "categories": ["mental_health"]},
        {"from": b, "to": [ifo], "categories": ["health"]},
        {"from": ifo, "to": [s], "categories": ["social"]},
        {"from": ifo, "to": [b], "categories": ["family"]},
        {"from": s, "to": [ifo, b], "categories": ["education"]},
    ]
    body = consent_body(grants, social.node.clock.now())
    status, consent = await social.api("POST", f"/plans/{plan_id}/consents", "lead", body)
    assert status == 201, consent
    assert {d["node_id"]: d["outcome"] for d in consent["distribution"]} == {s: "ok", b: "ok"}
    return plan_id, str(consent["consent_id"])
