"""Plans: the lead creates one and invites participants; an invited node links or declines."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, time
from typing import NotRequired, TypedDict
from zoneinfo import ZoneInfo

from protocol.clock import parse_time
from protocol.codes import Purpose
from protocol.messages import PlanInvite, PlanInviteReply

from ..domain.plan_status import ConsentState, PlanStatus, PlanStatusFacts, plan_status
from ..errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound
from ..store import consent_people, records
from ..store import revocations as revocation_store
from ..store.tables import Plan, User
from .outbound import LogContext
from .ports import FederationNode
from .users import professional_ref

# the review meeting's date and time are typed as the professionals read a clock: Swedish time
MEETING_TIME = ZoneInfo("Europe/Stockholm")


async def create_plan(
    node: FederationNode,
    actor: User,
    *,
    child_id: str,
    participants: list[str],
    purpose: str,
    reason: str = "",
    responsible_node: str | None = None,
) -> PlanView:
    """Create a plan led here and invite every participant (concurrently); return its view."""
    if actor.role != "lead":
        raise Forbidden("only a lead professional creates plans", code="not_lead")
    errors: dict[str, FieldProblem] = {}
    child = await records.get_child(node.engine, child_id)
    if child is None:
        errors["child_id"] = FieldProblem("no_such_child", "no such child on this node")
    others = [p for p in dict.fromkeys(participants) if p != node.node_id]
    unknown = [p for p in others if not await node.has_peer(p)]
    if not others:
        errors["participants"] = FieldProblem("no_other_agency", "invite at least one other agency")
    elif unknown:
        nodes = ", ".join(unknown)
        errors["participants"] = FieldProblem(
            "not_trusted_peers", f"not trusted peers: {nodes}", {"nodes": nodes}
        )
    if purpose not in {p.value for p in Purpose}:
        choices = ", ".join(p.value for p in Purpose)
        errors["purpose"] = FieldProblem("one_of", f"one of {choices}", {"choices": choices})
    responsible = responsible_node or node.node_id
    if responsible not in [node.node_id, *others]:
        errors["responsible_node"] = FieldProblem(
            "not_participant", "must be this node or a participant"
        )
    if len(reason) > 4000:
        errors["reason"] = FieldProblem(
            "max_length", "at most 4000 characters", {"max_length": 4000}
        )
    if errors:
        raise InvalidInput("the plan could not be created", code="plan_invalid", fields=errors)
    assert child is not None
    lead_ref = professional_ref(node.node_id, actor)
    plan = Plan(
        plan_id=str(uuid.uuid4()),
        child_id=child.child_id,
        role="lead",
        status="active",
        lead_node=node.node_id,
        lead_professional=lead_ref,
        responsible_node=responsible,
        purpose=purpose,
        reason=reason,
        created_at=node.clock.now(),
        coordinator_name=actor.display_name[:200] or None,
    )
    members = {node.node_id: "lead", **{p: "invited" for p in others}}
    async with node.store.writing() as conn:
        await records.insert_plan(conn, plan, members)
    invite = PlanInvite.model_validate(
        {
            "plan_id": plan.plan_id,
            "child": {"personnummer": child.personnummer},
            "lead_node": node.node_id,
            "lead_professional": lead_ref,
            "responsible_node": responsible,
            "participants": [node.node_id, *others],
            "purpose": purpose,
        }
    )
    context = LogContext(plan_id=plan.plan_id, purpose=purpose, professional=lead_ref)
    results = await asyncio.gather(
        *(node.peers.send(p, "plan.invite", invite, context) for p in others)
    )
    async with node.store.writing() as conn:
        for result in results:
            status = "failed"
            if result.ok and result.reply is not None:
                assert isinstance(result.reply.body, PlanInviteReply)
                status = result.reply.body.status  # always pending: a professional decides
            # a fast participant's plan.link may already have been recorded: keep it
            await records.set_participant_status(
                conn, plan.plan_id, result.peer, status, was="invited"
            )
    return await plan_view(node, plan.plan_id)


class Member(TypedDict):
    node_id: str
    status: str


class Invited(TypedDict):
    node_id: str
    outcome: str


class PlanView(TypedDict):
    """A plan as this node's professionals see it (``plan_view``)."""

    plan_id: str
    role: str
    status: str
    child_id: str | None
    lead_node: str
    lead_professional: str
    responsible_node: str
    purpose: str
    reason: str
    created_at: str
    participants: list[Member]
    life_status: str
    closed_at: str | None
    coordinator_name: str | None
    coordinator_contact: str | None
    review_at: str | None
    review_place: str | None
    lead_notified: NotRequired[str]  # after a link or decline: how the lead took the news
    invited: NotRequired[Invited]  # after inviting one more agency: how it answered


class Invitation(TypedDict):
    """An invitation waiting here, with the local children whose personnummer it names."""

    plan_id: str
    lead_node: str
    purpose: str
    personnummer: str | None
    received_at: datetime
    matches: list[str]


async def plan_view(node: FederationNode, plan_id: str) -> PlanView:
    """A plan as this node's professionals see it: no identity numbers, no peer content."""
    plan = await records.get_plan(node.engine, plan_id)
    if plan is None:
        raise NotFound(
            f"no plan {plan_id} on this node", code="no_plan", params={"plan_id": plan_id}
        )
    members = await records.participants(node.engine, plan_id)
    status = await life_status(node, plan, members)
    return {
        "plan_id": plan.plan_id,
        "role": plan.role,
        "status": plan.status,
        "child_id": plan.child_id,
        "lead_node": plan.lead_node,
        "lead_professional": plan.lead_professional,
        "responsible_node": plan.responsible_node,
        "purpose": plan.purpose,
        "reason": plan.reason,
        "created_at": plan.created_at.isoformat(),
        "participants": [{"node_id": n, "status": s} for n, s in sorted(members.items())],
        "life_status": status.value,
        "closed_at": plan.closed_at.isoformat() if plan.closed_at else None,
        "coordinator_name": plan.coordinator_name,
        "coordinator_contact": plan.coordinator_contact,
        "review_at": plan.review_at.isoformat() if plan.review_at else None,
        "review_place": plan.review_place,
    }


async def life_status(node: FederationNode, plan: Plan, members: dict[str, str]) -> PlanStatus:
    """The plan's status from what this node holds (``domain.plan_status``)."""
    statements = await records.consents_for_plan(node.engine, plan.plan_id)
    consents = []
    async with node.store.reading() as conn:
        replaced = await consent_people.replacements_for_plan(conn, plan.plan_id)
        for st in statements:
            consents.append(
                ConsentState(
                    issued_at=parse_time(st["issued_at"]),
                    valid_until=parse_time(st["valid_until"]),
                    required=frozenset(c["ref"] for c in st["required"]),
                    given_by=frozenset(c["ref"] for c in st["given_by"]),
                    revoked=await revocation_store.is_revoked(conn, st["consent_id"], plan.plan_id),
                    replaced=st["consent_id"] in replaced,
                )
            )
    facts = PlanStatusFacts(plan.role, plan.status, members, consents)
    return plan_status(facts, node.clock.now())


# which plans a list shows: this agency's plans by status (never invitations still waiting for
# an answer here, nor declined ones)
PLAN_LISTS = {"active": ("active",), "closed": ("closed",), "all": ("active", "closed")}


async def list_plan_views(node: FederationNode, which: str = "active") -> list[PlanView]:
    """The plans this agency leads or takes part in, newest first: the ``active`` ones, the
    ``closed`` ones or ``all`` of both."""
    statuses = PLAN_LISTS.get(which)
    if statuses is None:
        choices = ", ".join(PLAN_LISTS)
        raise InvalidInput(
            "fix the listed fields",
            code="invalid_fields",
            fields={"status": FieldProblem("one_of", f"one of {choices}", {"choices": choices})},
        )
    plans = await records.list_plans(node.engine, None)
    return [await plan_view(node, p.plan_id) for p in plans if p.status in statuses]


async def _led_open_plan(node: FederationNode, actor: User, plan_id: str) -> Plan:
    """The plan ``plan_id`` if this node leads it, ``actor`` is a lead and it is not closed."""
    if actor.role != "lead":
        raise Forbidden("only a lead professional changes a plan", code="not_lead")
    plan = await records.get_plan(node.engine, plan_id)
    if plan is None or plan.role != "lead":
        raise NotFound(
            f"no plan {plan_id} led by this node", code="no_led_plan", params={"plan_id": plan_id}
        )
    if plan.status == "closed":
        raise Conflict("the plan is closed", code="plan_closed")
    return plan


def _text(value: str, name: str, limit: int, errors: dict[str, FieldProblem]) -> str | None:
    value = value.strip()
    if len(value) > limit:
        errors[name] = FieldProblem(
            "max_length", f"at most {limit} characters", {"max_length": limit}
        )
    return value or None


async def update_details(
    node: FederationNode,
    actor: User,
    plan_id: str,
    *,
    reason: str,
    coordinator_name: str,
    coordinator_contact: str,
    review_date: str,
    review_time: str,
    review_place: str,
) -> PlanView:
    """The lead edits the plan's details. They stay at the lead node: they are not plan content
    any holder releases, and no peer needs them to decide anything (SPEC §7.1 note)."""
    await _led_open_plan(node, actor, plan_id)
    errors: dict[str, FieldProblem] = {}
    if len(reason) > 4000:
        errors["reason"] = FieldProblem(
            "max_length", "at most 4000 characters", {"max_length": 4000}
        )
    name = _text(coordinator_name, "coordinator_name", 200, errors)
    contact = _text(coordinator_contact, "coordinator_contact", 200, errors)
    place = _text(review_place, "review_place", 200, errors)
    review_at: datetime | None = None
    if review_date.strip():
        try:
            day = date.fromisoformat(review_date.strip())
            at = time.fromisoformat(review_time.strip()) if review_time.strip() else time(0, 0)
            review_at = datetime.combine(day, at, tzinfo=MEETING_TIME)
        except ValueError:
            errors["review_date"] = FieldProblem(
                "date_time", "a date (and a time), e.g. 2027-02-01"
            )
    elif review_time.strip():
        errors["review_date"] = FieldProblem("date_missing", "give the date of the meeting")
    if errors:
        raise InvalidInput("the details could not be saved", code="plan_invalid", fields=errors)
    async with node.store.writing() as conn:
        await records.update_plan(
            conn,
            plan_id,
            reason=reason.strip(),
            coordinator_name=name,
            coordinator_contact=contact,
            review_at=review_at,
            review_place=place,
        )
    return await plan_view(node, plan_id)


async def invite_participant(
    node: FederationNode, actor: User, plan_id: str, peer: str
) -> PlanView:
    """Invite one more agency to a plan this node leads, as the first ones were (SPEC §7.1): its
    invitation lists every node taking part and itself. The participants already in the plan
    learn of it from the next consent statement that names it (§7.3)."""
    plan = await _led_open_plan(node, actor, plan_id)
    members = await records.participants(node.engine, plan_id)
    if not peer or peer == node.node_id or not await node.has_peer(peer):
        raise InvalidInput(
            "pick an agency this node trusts",
            code="plan_invalid",
            fields={"participant": FieldProblem("not_trusted_peer", "not a trusted agency")},
        )
    if members.get(peer) not in (None, "failed"):  # a node keeps the first invitation it got
        raise InvalidInput(
            "that agency is already invited",
            code="plan_invalid",
            fields={"participant": FieldProblem("already_invited", "already invited")},
        )
    async with node.store.writing() as conn:
        if peer in members:
            await records.set_participant_status(conn, plan_id, peer, "invited")
        else:
            await records.add_participants(conn, plan_id, [peer], "invited")
        members = await records.participants_on(conn, plan_id)
    child = await records.get_child(node.engine, plan.child_id or "")
    assert child is not None
    taking_part = [n for n, s in sorted(members.items()) if s not in records.NOT_TAKING_PART]
    invite = PlanInvite.model_validate(
        {
            "plan_id": plan_id,
            "child": {"personnummer": child.personnummer},
            "lead_node": node.node_id,
            "lead_professional": plan.lead_professional,
            "responsible_node": plan.responsible_node,
            "participants": [node.node_id, *(n for n in taking_part if n != node.node_id)],
            "purpose": plan.purpose,
        }
    )
    ref = professional_ref(node.node_id, actor)
    context = LogContext(plan_id=plan_id, purpose=plan.purpose, professional=ref)
    result = await node.peers.send(peer, "plan.invite", invite, context)
    status = "failed"
    if result.ok and result.reply is not None:
        assert isinstance(result.reply.body, PlanInviteReply)
        status = result.reply.body.status
    async with node.store.writing() as conn:
        await records.set_participant_status(conn, plan_id, peer, status, was="invited")
    view = await plan_view(node, plan_id)
    view["invited"] = {"node_id": peer, "outcome": result.outcome}
    return view


async def list_invitations(node: FederationNode) -> list[Invitation]:
    """Invitations waiting for a professional here, each with the children on record *here*
    whose personnummer is the invitation's (``matches``): the invited node never tells the
    lead whether it holds the child, so this is the only place where the match is seen."""
    pending = await records.list_plans(node.engine, "pending")
    async with node.store.reading() as conn:
        matches = {
            p.plan_id: await records.children_by_personnummer(conn, p.link_personnummer or "")
            for p in pending
        }
    return [
        {
            "plan_id": p.plan_id,
            "lead_node": p.lead_node,
            "purpose": p.purpose,
            "personnummer": p.link_personnummer,
            "received_at": p.created_at,
            "matches": matches[p.plan_id],
        }
        for p in pending
    ]


async def resolve_invitation(
    node: FederationNode, actor: User, plan_id: str, *, child_id: str | None, decline: bool
) -> PlanView:
    """A professional links a pending invitation to a local child, or declines it."""
    if actor.role not in ("professional", "lead"):
        raise Forbidden("only professionals handle invitations", code="not_professional")
    plan = await records.get_plan(node.engine, plan_id)
    if plan is None or plan.role != "participant":
        raise NotFound(
            f"no invitation for plan {plan_id}", code="no_invitation", params={"plan_id": plan_id}
        )
    if plan.status != "pending":
        raise Conflict(
            f"the invitation is already {plan.status}",
            code="invitation_resolved",
            params={"status": plan.status},
        )
    values: dict[str, str | None]
    if decline:
        values = {"status": "declined", "link_personnummer": None}
    else:
        child = await records.get_child(node.engine, child_id or "")
        if child is None:
            raise InvalidInput(
                "pick a child on this node",
                code="no_such_child",
                fields={"child_id": FieldProblem("no_such_child", "no such child")},
            )
        if child.personnummer != plan.link_personnummer:
            raise InvalidInput(
                "that child's personnummer differs from the invitation's",
                code="child_mismatch",
                fields={
                    "child_id": FieldProblem("child_mismatch", "does not match the invitation")
                },
            )
        values = {"status": "active", "child_id": child.child_id, "link_personnummer": None}
    status = "declined" if decline else "linked"
    async with node.store.writing() as conn:
        await records.update_plan(conn, plan_id, **values)
        await records.set_participant_status(conn, plan_id, node.node_id, status)
    ref = professional_ref(node.node_id, actor)
    result = await node.peers.send(
        plan.lead_node,
        "plan.link",
        {"plan_id": plan_id, "status": status, "professional": ref},
        LogContext(plan_id=plan_id, professional=ref, purpose=plan.purpose),
    )
    view = await plan_view(node, plan_id)
    view["lead_notified"] = result.outcome
    return view
