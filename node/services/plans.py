"""Plans: the lead creates one and invites participants; an invited node links or declines."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from protocol.codes import Purpose
from protocol.messages import PlanInvite, PlanInviteReply

from ..errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound
from ..store import records
from ..store.tables import Plan, User
from .outbound import LogContext
from .ports import FederationNode
from .users import professional_ref


async def create_plan(
    node: FederationNode,
    actor: User,
    *,
    child_id: str,
    participants: list[str],
    purpose: str,
    reason: str = "",
    responsible_node: str | None = None,
) -> dict[str, Any]:
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


async def plan_view(node: FederationNode, plan_id: str) -> dict[str, Any]:
    """A plan as this node's professionals see it: no identity numbers, no peer content."""
    plan = await records.get_plan(node.engine, plan_id)
    if plan is None:
        raise NotFound(
            f"no plan {plan_id} on this node", code="no_plan", params={"plan_id": plan_id}
        )
    members = await records.participants(node.engine, plan_id)
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
    }


async def list_plan_views(node: FederationNode, status: str | None = None) -> list[dict[str, Any]]:
    return [await plan_view(node, p.plan_id) for p in await records.list_plans(node.engine, status)]


async def list_invitations(node: FederationNode) -> list[dict[str, Any]]:
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
) -> dict[str, Any]:
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
    values: dict[str, Any]
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
