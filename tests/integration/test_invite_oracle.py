"""``plan.invite`` is not an oracle: the reply never depends on what the invited agency holds.

Three real nodes on loopback: the school is a plan's real lead, BUP is the invited agency, and
social services plays a rogue federation member — a trusted peer with its own real key that
crafts ``plan.invite`` envelopes and POSTs them raw to BUP's federation endpoint. A trusted peer
is not a trusted participant: it must not learn whether a child is on record at BUP (itself a
secret under OSL), must not get a plan at BUP linked to a child, and must not learn or change
anything about a plan it does not lead. A child is linked only by a professional at BUP.
"""

from __future__ import annotations

import uuid
from typing import Any

from node.store import records
from node.store.tables import Plan
from protocol.canonical import canonicalize
from protocol.envelope import sign_envelope
from tests.integration.test_federation_security import log_rows, post, verify_reply
from tests.support.federation import RunningNode
from tests.support.plans import CHILD_PNR, CHILD_PNR_DIGITS, add_child, create_plan

ABSENT_PNR = "20120704-1235"  # synthetic, valid, and not on record at BUP


def invitation(sender: RunningNode, to: RunningNode, plan_id: str, pnr: str) -> dict[str, Any]:
    """A well-formed ``plan.invite`` from ``sender`` (as the plan's lead), signed by its key."""
    return sign_envelope(
        type="plan.invite",
        body={
            "plan_id": plan_id,
            "child": {"personnummer": pnr},
            "lead_node": sender.node_id,
            "lead_professional": f"{sender.node_id}/u/lead",
            "responsible_node": sender.node_id,
            "participants": [sender.node_id, to.node_id],
            "purpose": "sip",
        },
        sender=sender.node_id,
        to=to.node_id,
        key=sender.node.identity.key,
        clock=sender.node.clock,
    )


async def invite(
    sender: RunningNode, to: RunningNode, plan_id: str, pnr: str
) -> tuple[int, dict[str, Any]]:
    """POST the invitation; return (HTTP status, the verified reply's shape)."""
    status, reply = await post(to, invitation(sender, to, plan_id, pnr))
    verify_reply(to, reply, sender.node_id)  # really signed by the invited node
    return status, reply


def shape(reply: dict[str, Any], plan_id: str) -> bytes:
    """The reply without what differs by construction (its id, re, times, signature, and the
    plan id it echoes), as canonical bytes: two replies that say the same are equal here."""
    fixed = {k: v for k, v in reply.items() if k not in ("id", "re", "issued_at", "expires_at")}
    fixed["sig"] = {k: v for k, v in reply["sig"].items() if k != "value"}
    assert reply["body"]["plan_id"] == plan_id
    fixed["body"] = {**reply["body"], "plan_id": "<plan>"}
    return canonicalize(fixed)


async def plan_at(node: RunningNode, plan_id: str) -> tuple[Plan | None, dict[str, str]]:
    plan = await records.get_plan(node.node.engine, plan_id)
    return plan, await records.participants(node.node.engine, plan_id)


async def invitations(node: RunningNode) -> dict[str, list[str]]:
    """What a professional at ``node`` sees: each waiting invitation's matching local children."""
    status, body = await node.api("GET", "/invitations", "prof")
    assert status == 200, body
    return {i["plan_id"]: i["matches"] for i in body}


async def test_an_invitation_answers_the_same_whether_or_not_the_child_is_on_record(
    trio: list[RunningNode],
) -> None:
    _, rogue, bup = trio
    bup_child = await add_child(bup)
    present, absent = str(uuid.uuid4()), str(uuid.uuid4())

    status_present, reply_present = await invite(rogue, bup, present, CHILD_PNR)
    status_absent, reply_absent = await invite(rogue, bup, absent, ABSENT_PNR)

    assert status_present == status_absent == 200
    assert reply_present["type"] == reply_absent["type"] == "plan.invite.reply"
    assert shape(reply_present, present) == shape(reply_absent, absent)
    assert reply_present["body"] == {"plan_id": present, "status": "pending"}
    # nothing at BUP is linked to the child: both are held for a professional
    for plan_id in (present, absent):
        plan, members = await plan_at(bup, plan_id)
        assert plan is not None
        assert (plan.status, plan.child_id, plan.lead_node) == ("pending", None, rogue.node_id)
        assert members[bup.node_id] == "pending"
    assert all(p.child_id is None for p in await records.list_plans(bup.node.engine))
    status, active = await bup.api("GET", "/plans", "prof")
    assert (status, active) == (200, [])
    # only the professional at BUP sees which of BUP's own children match
    assert await invitations(bup) == {present: [bup_child], absent: []}


async def test_a_known_plan_id_reinvited_by_another_peer_reveals_nothing_and_changes_nothing(
    trio: list[RunningNode],
) -> None:
    school, rogue, bup = trio
    bup_child = await add_child(bup)
    plan_id = await create_plan(school, await add_child(school), [bup.node_id])
    stored = await plan_at(bup, plan_id)
    assert stored[0] is not None and stored[0].lead_node == school.node_id
    baseline_id = str(uuid.uuid4())
    _, baseline = await invite(rogue, bup, baseline_id, ABSENT_PNR)  # a plan BUP never saw

    # while the real invitation waits for BUP's professional ...
    before = await log_rows(bup)
    status, reply = await invite(rogue, bup, plan_id, ABSENT_PNR)
    assert status == 200
    assert shape(reply, plan_id) == shape(baseline, baseline_id)
    assert await plan_at(bup, plan_id) == stored  # not taken over: same lead, number, members
    [row] = (await log_rows(bup))[len(before) :]
    assert (row["peer"], row["message_type"]) == (rogue.node_id, "plan.invite")
    assert (row["outcome"], row["reason"]) == ("refused", "plan_unknown")

    # ... and after the professional linked it to the child
    status, linked = await bup.api(
        "POST", f"/invitations/{plan_id}/link", "prof", {"child_id": bup_child}
    )
    assert status == 201, linked
    linked_plan = await plan_at(bup, plan_id)
    status, reply = await invite(rogue, bup, plan_id, CHILD_PNR)
    assert status == 200
    assert shape(reply, plan_id) == shape(baseline, baseline_id)
    assert await plan_at(bup, plan_id) == linked_plan
    assert linked_plan[0] is not None
    assert (linked_plan[0].status, linked_plan[0].child_id) == ("active", bup_child)
    assert linked_plan[0].lead_node == school.node_id


async def test_the_lead_resending_its_invitation_gets_the_same_reply_and_changes_nothing(
    trio: list[RunningNode],
) -> None:
    school, _, bup = trio
    bup_child = await add_child(bup)
    plan_id = await create_plan(school, await add_child(school), [bup.node_id])
    stored = await plan_at(bup, plan_id)
    status, first = await invite(school, bup, plan_id, CHILD_PNR)
    assert status == 200 and first["body"] == {"plan_id": plan_id, "status": "pending"}
    assert await plan_at(bup, plan_id) == stored

    status, _ = await bup.api(
        "POST", f"/invitations/{plan_id}/link", "prof", {"child_id": bup_child}
    )
    assert status == 201
    linked = await plan_at(bup, plan_id)
    status, again = await invite(school, bup, plan_id, CHILD_PNR)
    assert status == 200 and shape(again, plan_id) == shape(first, plan_id)
    assert await plan_at(bup, plan_id) == linked
    assert linked[0] is not None and linked[0].child_id == bup_child


async def test_each_invited_agency_links_only_after_its_professional_decides(
    trio: list[RunningNode],
) -> None:
    school, social, bup = trio
    social_child = await add_child(social)
    await add_child(bup)
    plan_id = await create_plan(school, await add_child(school), [social.node_id, bup.node_id])

    # both hold the child, yet neither plan is linked: the lead hears "pending" from each
    _, view = await school.api("GET", f"/plans/{plan_id}", "lead")
    assert {p["node_id"]: p["status"] for p in view["participants"]} == {
        school.node_id: "lead",
        social.node_id: "pending",
        bup.node_id: "pending",
    }
    for node in (social, bup):
        plan, _ = await plan_at(node, plan_id)
        assert plan is not None and (plan.status, plan.child_id) == ("pending", None)
        assert plan.link_personnummer == CHILD_PNR_DIGITS
    assert await invitations(social) == {plan_id: [social_child]}

    # the professional at social services links; the one at BUP declines
    status, linked = await social.api(
        "POST", f"/invitations/{plan_id}/link", "prof", {"child_id": social_child}
    )
    assert status == 201 and linked["lead_notified"] == "ok", linked
    status, declined = await bup.api("POST", f"/invitations/{plan_id}/decline", "prof")
    assert status == 201 and declined["lead_notified"] == "ok", declined

    _, view = await school.api("GET", f"/plans/{plan_id}", "lead")
    assert {p["node_id"]: p["status"] for p in view["participants"]} == {
        school.node_id: "lead",
        social.node_id: "linked",
        bup.node_id: "declined",
    }
    social_plan, _ = await plan_at(social, plan_id)
    assert social_plan is not None
    assert (social_plan.status, social_plan.child_id) == ("active", social_child)
    assert social_plan.link_personnummer is None  # no longer held once decided
    bup_plan, _ = await plan_at(bup, plan_id)
    assert bup_plan is not None and (bup_plan.status, bup_plan.child_id) == ("declined", None)
    assert await invitations(social) == {} and await invitations(bup) == {}
