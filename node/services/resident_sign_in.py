"""A resident the e-identification provider vouched for becomes a resident user of this node,
if and only if the lead recorded them on a plan this node leads.

``node.oidc.resident`` decides, purely, who the resident is (a keyed hash of their identity
number, and their age); this module matches the hash to the people recorded on plans' consents
(``consent_person.identity_hash``, lead node only) and records the resident as a user of role
``resident`` with no name (the name stays in the plan's record of the person, which operators
do not read). Nothing is written for a refused sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.exc import IntegrityError

from ..oidc.resident import Resident, ResidentRefused, age_on, resident_user_id
from ..store import consent_people, records
from ..store.store import Store
from ..store.tables import ConsentPerson, User
from .users import hash_token, new_token

RESIDENT_ROLE = "resident"
CHILD_ROLES = ("child", "young_person")


@dataclass(frozen=True)
class ResidentSignIn:
    """A resident let in: the user, and who they are on each plan they may open."""

    user: User
    people: tuple[ConsentPerson, ...]


def admitted(
    people: list[ConsentPerson], resident: Resident, child_min_age: int, today: date
) -> list[ConsentPerson]:
    """The plan entries the resident may open: a guardian's always, a child's from
    ``child_min_age``. Raises ``ResidentRefused`` (no_plan, too_young) when none is left."""
    if not people:
        raise ResidentRefused("no_plan")
    old_enough = age_on(resident.born, today) >= child_min_age
    kept = [p for p in people if p.role not in CHILD_ROLES or old_enough]
    if not kept:
        raise ResidentRefused("too_young")
    return kept


async def plans_of(store: Store, resident: Resident) -> list[ConsentPerson]:
    """Everyone recorded with the resident's identity hash, on every plan this node leads."""
    async with store.reading() as conn:
        return await consent_people.people_with_identity(conn, resident.identity_hash)


async def sign_in_resident(
    store: Store,
    issuer: str,
    resident: Resident,
    child_min_age: int,
    now: datetime,
) -> ResidentSignIn:
    """The resident user for a verified sign-in, recorded on first sign-in; raises
    ``ResidentRefused`` (no_plan, too_young, disabled) and writes nothing then."""
    people = admitted(await plans_of(store, resident), resident, child_min_age, now.date())
    engine = store.engine
    user = await records.user_by_subject(engine, issuer, resident.identity_hash)
    if user is not None and (user.role != RESIDENT_ROLE or user.disabled_at is not None):
        raise ResidentRefused("disabled")
    if user is None:
        user = User(
            user_id=resident_user_id(resident.identity_hash),
            display_name="",
            role=RESIDENT_ROLE,
            token_hash=hash_token(new_token()),  # never shown: residents have no API access
            created_at=now,
            oidc_issuer=issuer,
            oidc_subject=resident.identity_hash,
        )
        try:
            await records.insert_user(engine, user)
        except IntegrityError:  # the same resident's sign-in in another tab got there first
            found = await records.user_by_subject(engine, issuer, resident.identity_hash)
            if found is None:
                raise
            user = found
    return ResidentSignIn(user, tuple(people))


async def plans_for_user(store: Store, user: User) -> list[ConsentPerson]:
    """Who a signed-in resident is on each plan: matched again on every request (a lead who
    removes the person, or their identity number, from a plan closes it to them at once)."""
    if user.role != RESIDENT_ROLE or not user.oidc_subject:
        return []
    async with store.reading() as conn:
        return await consent_people.people_with_identity(conn, user.oidc_subject)
