"""Small helpers the page handlers share: reading forms, agency names, plan lookups."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ...domain.consent_people import waiting_for
from ...runtime import Node
from ...store import consent_people as people_store
from ...store import peers as peer_store
from ...store import records
from ...store import revocations as revocation_store
from .forms import Form


async def read_form(request: web.Request) -> Form:
    """The posted fields as name -> list of values (files are ignored)."""
    posted = await request.post()
    form: dict[str, list[str]] = {}
    for name, value in posted.items():
        if isinstance(value, str):
            form.setdefault(name, []).append(value)
    return form


async def agency_names(node: Node) -> dict[str, str]:
    """Node id -> agency name, for every trusted peer and this node."""
    names = {p.node_id: p.agency_name for p in await peer_store.list_peers(node.engine)}
    names[node.node_id] = node.config.node.agency_name
    return names


async def child_names(node: Node) -> dict[str, str]:
    return {c.child_id: c.name for c in await records.list_children(node.engine)}


async def consents_with_state(node: Node, plan_id: str) -> list[dict[str, Any]]:
    """The plan's consent statements, newest last, each with its revocation (if any), the
    statement that replaced it (if any) and who it still waits for (by name at the lead, whose
    people are recorded here; by reference elsewhere), plus ``names``: reference -> name."""
    statements = await records.consents_for_plan(node.engine, plan_id)
    result = []
    async with node.engine.connect() as conn:
        replaced = await people_store.replacements_for_plan(conn, plan_id)
        names = {p.ref: p.name for p in await people_store.people_for_plan(conn, plan_id)}
        for statement in statements:
            revocation = await revocation_store.get_revocation(
                conn, statement["consent_id"], plan_id
            )
            result.append(
                {
                    "statement": statement,
                    "revoked_at": revocation.revoked_at if revocation else None,
                    "replaced_by": replaced.get(statement["consent_id"]),
                    "waiting_for": waiting_for(statement, names),
                    "names": names,
                }
            )
    return result


async def coordinator_of(node: Node, plan_id: str) -> dict[str, str] | None:
    """The plan's named coordinator and how to reach them, where this node holds them (the
    lead's node: plan details stay there); None elsewhere or when none is named yet."""
    plan = await records.get_plan(node.engine, plan_id)
    if plan is None or not plan.coordinator_name:
        return None
    return {"name": plan.coordinator_name, "contact": plan.coordinator_contact or ""}


async def meeting_of(node: Node, plan_id: str) -> dict[str, Any] | None:
    """The plan's next review meeting (when, where), where this node holds the plan's details."""
    plan = await records.get_plan(node.engine, plan_id)
    if plan is None or plan.review_at is None:
        return None
    return {"at": plan.review_at, "place": plan.review_place or ""}
