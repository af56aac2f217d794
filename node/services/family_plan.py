"""The family reads its plan at the lead's node: the same assembly as the lead's view.

A resident may open only a plan the lead recorded them on (``resident_sign_in.plans_for_user``);
any other plan id reads as not found, whether or not it exists, so the pages answer no question
about other families. The lead's node assembles the plan for the family as it does for its lead
professional — the fullest view, every holder deciding as always (SPEC §11) — and the requests
name the plan's lead professional (SPEC §7.4: the lead's node acts for the family), so every
holder's exchange log says who is accountable. Nothing received is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..domain.shared_plan_shape import SharedPlan
from ..errors import NotFound, Unavailable
from ..store import records
from ..store.tables import ConsentPerson, Plan, User
from .access_report import AccessTimeline, access_timeline
from .assembly import assemble
from .ports import FederationNode
from .resident_sign_in import plans_for_user
from .users import active_user


@dataclass(frozen=True)
class FamilyPlan:
    """A plan as its family reads it: who the reader is on it, the plan row (its details, at
    the lead), and the assembled shared plan."""

    person: ConsentPerson
    plan: Plan
    shared: SharedPlan


def _not_theirs(plan_id: str) -> NotFound:
    return NotFound(f"no plan {plan_id} here", code="no_such_plan", params={"plan_id": plan_id})


async def person_on_plan(node: FederationNode, resident: User, plan_id: str) -> ConsentPerson:
    """Who ``resident`` is on ``plan_id``; not found (as for any unknown plan) otherwise."""
    for person in await plans_for_user(node.store, resident):
        if person.plan_id == plan_id:
            return person
    raise _not_theirs(plan_id)


async def read_family_plan(node: FederationNode, resident: User, plan_id: str) -> FamilyPlan:
    """The plan ``resident`` is on, assembled by this (the lead's) node for them."""
    person = await person_on_plan(node, resident, plan_id)
    plan = await _led_plan(node, plan_id)
    acting = await _acting_for_family(node, plan)
    shared = await assemble(node, acting, plan_id, led_here=True)
    return FamilyPlan(person, plan, shared)


async def lead_professional_for(node: FederationNode, plan_id: str) -> User:
    """The plan's lead professional, in whose name the lead's node acts for the family (SPEC
    §7.4: reading, §6.2: answering, §7.5: withdrawing); ``Unavailable`` when they have left."""
    return await _acting_for_family(node, await _led_plan(node, plan_id))


async def _led_plan(node: FederationNode, plan_id: str) -> Plan:
    plan = await records.get_plan(node.engine, plan_id)
    if plan is None or plan.role != "lead":
        raise _not_theirs(plan_id)
    return plan


async def _acting_for_family(node: FederationNode, plan: Plan) -> User:
    lead_user = plan.lead_professional.rpartition("/u/")[2]
    acting = await active_user(node.engine, lead_user)
    if acting is None or acting.role not in ("lead", "professional"):
        # the lead professional who answers for the plan has left: the family cannot act
        # through a plan no professional here answers for; the lead's node must name a new one
        raise Unavailable(
            "the plan's lead professional cannot act for the family now",
            code="no_lead_professional",
        )
    return acting


async def read_family_access(node: FederationNode, resident: User, plan_id: str) -> AccessTimeline:
    """Who has received what about the child, for ``resident`` on ``plan_id``: the lead's one
    access report (SPEC §7.12), asked now of every participant in the name of the plan's lead
    professional (the lead's node acts for the family; no resident is named on the wire)."""
    await person_on_plan(node, resident, plan_id)
    try:
        return await access_timeline(node, plan_id)
    except NotFound:  # not a plan this node leads: as for any plan that is not theirs
        raise _not_theirs(plan_id) from None
