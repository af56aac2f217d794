"""The family writes its own words into the plan, at the lead's node.

A guardian writes the family's view (``family_view``), the child or young person their own
(``child_view``). Each person on the plan has one fragment of their own — the lead node's, of
category ``family`` — and every edit is a new version of it, written through the one authoring
path (``services.fragments.author_fragment`` with a ``FamilyAuthor``). One fragment per person
rather than per plan, so two guardians never overwrite each other, each version says who wrote
it, and the child's words stay apart from the adults'. The fragment's id is derived from the
plan and the person's plan-local reference, which the lead never reuses within a plan, so the
person's fragment is found without a second query or a new table.

The fragment is shared like any other: each holder's consent decides (category ``family``
from the lead), nothing else. It carries ``written_by`` (reference and role, SPEC.md §6.1);
the name stays at the lead, in the consent person it was recorded as. A resident may write
only on a plan they are on (``family_plan.person_on_plan``); any other plan reads as not found.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from ..errors import FieldProblem, InvalidInput, NotFound
from ..store import consent_people as people_store
from ..store import records
from ..store.tables import ConsentPerson, User
from .family_plan import person_on_plan
from .fragments import FamilyAuthor, FragmentView, author_fragment
from .ports import FederationNode
from .resident_sign_in import CHILD_ROLES

# the namespace of the family's fragment ids: uuid5(namespace, "<plan id>/<person ref>")
FAMILY_FRAGMENTS = uuid.UUID("6f1d3c2a-5b7e-4c19-9a0e-2d8b4f6a1c37")
FAMILY_CATEGORY = "family"
MAX_VIEW = 4000  # protocol.models.LongText: what child_view and family_view may hold


@dataclass(frozen=True)
class FamilyView:
    """A person's own view on a plan: what they are on it, which content member their words
    go in (``child_view`` or ``family_view``), and the current text (empty before the first
    version)."""

    person: ConsentPerson
    member: str
    text: str
    version: int | None
    authored_at: datetime | None


def view_member(role: str) -> str:
    """The content member a person of ``role`` writes: the child's own view or the family's."""
    return "child_view" if role in CHILD_ROLES else "family_view"


def family_fragment_id(plan_id: str, ref: str) -> str:
    """The id of the fragment that holds ``ref``'s own words on ``plan_id``."""
    return str(uuid.uuid5(FAMILY_FRAGMENTS, f"{plan_id}/{ref}"))


def _not_theirs(plan_id: str) -> NotFound:
    return NotFound(f"no plan {plan_id} here", code="no_such_plan", params={"plan_id": plan_id})


async def _their_person(node: FederationNode, resident: User, plan_id: str) -> ConsentPerson:
    person = await person_on_plan(node, resident, plan_id)
    plan = await records.get_plan(node.engine, plan_id)
    if plan is None or plan.role != "lead":
        raise _not_theirs(plan_id)
    return person


async def read_view(node: FederationNode, resident: User, plan_id: str) -> FamilyView:
    """``resident``'s own view on ``plan_id`` as it stands (the latest version)."""
    person = await _their_person(node, resident, plan_id)
    member = view_member(person.role)
    wanted = family_fragment_id(plan_id, person.ref)
    async with node.store.reading() as conn:
        current = await records.latest_fragments(conn, plan_id, [FAMILY_CATEGORY])
    for record in current.get(FAMILY_CATEGORY, []):
        if record.fragment_id == wanted:
            text = str(record.content.get(member) or "")
            return FamilyView(person, member, text, record.version, record.authored_at)
    return FamilyView(person, member, "", None, None)


def _checked_text(text: str) -> str:
    text = text.strip().replace("\r\n", "\n")
    problem: FieldProblem | None = None
    if not text:
        problem = FieldProblem("missing", "write something first")
    elif len(text) > MAX_VIEW:
        problem = FieldProblem(
            "string_too_long", f"at most {MAX_VIEW} characters", {"max_length": MAX_VIEW}
        )
    if problem is not None:
        raise InvalidInput("the view could not be saved", code="view_invalid",
                           fields={"text": problem})  # fmt: skip
    return text


async def write_view(node: FederationNode, resident: User, plan_id: str, text: str) -> FragmentView:
    """Save ``text`` as ``resident``'s own view on ``plan_id``: version 1 of their fragment,
    or its next version. Empty or too long text is refused at the field and saves nothing; a
    closed plan is refused (``plan_closed``) as for a professional."""
    person = await _their_person(node, resident, plan_id)
    member = view_member(person.role)
    return await author_fragment(
        node,
        FamilyAuthor(ref=person.ref, role=person.role),
        plan_id,
        category=FAMILY_CATEGORY,
        indicators=[],
        content={member: _checked_text(text)},
        fragment_id=family_fragment_id(plan_id, person.ref),
    )


async def family_writers(node: FederationNode, plan_id: str) -> dict[str, dict[str, str]]:
    """Reference -> {name, role} of the people on a plan this node leads, for the lead's own
    pages to say who in the family wrote a view (names never leave this node). Empty where the
    plan is led elsewhere: a participant knows the writer by reference and role only."""
    async with node.store.reading() as conn:
        people = await people_store.people_for_plan(conn, plan_id)
    return {p.ref: {"name": p.name, "role": p.role} for p in people}
