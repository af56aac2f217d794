"""A person recorded on a plan's consent at the lead, with the keyed hash of their identity
number, as the lead's consent page records one: who can then sign in as a resident. One copy
for the family tests' set-ups."""

from __future__ import annotations

from datetime import datetime

from node.oidc.resident import identity_hash
from node.services.provider_sign_in import subject_key
from node.store import consent_people
from node.store.tables import ConsentPerson
from tests.support.federation import RunningNode


async def record_person(
    lead: RunningNode,
    plan_id: str,
    person: tuple[str, str, str, str],
    now: datetime,
    *,
    required: bool = True,
    age: int | None = None,
) -> None:
    """Record ``person`` (ref, name, role, identity number), not yet asked, on ``plan_id``."""
    ref, name, role, number = person
    key = subject_key(lead.node.config.directory)
    async with lead.node.store.writing() as conn:
        await consent_people.insert_person(
            conn,
            ConsentPerson(
                plan_id=plan_id, ref=ref, name=name, role=role, required=required,
                answer="not_asked", updated_at=now, age=age,
            ),
        )  # fmt: skip
        await consent_people.set_identity_hash(
            conn, plan_id, ref, identity_hash(number, key, now.date())
        )
