"""Queries over the people whose consent a plan needs (lead node only) and over replaced
consents (every participant). One function per query or write, SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .tables import ConsentPerson, ConsentReplacement

T_PERSON = ConsentPerson.__table__  # type: ignore[attr-defined]
T_REPLACEMENT = ConsentReplacement.__table__  # type: ignore[attr-defined]


# --- people (lead node only) ------------------------------------------------------------------


async def people_for_plan(conn: AsyncConnection, plan_id: str) -> list[ConsentPerson]:
    """The plan's people in the order they were first recorded (``p1``, ``p2``, …)."""
    rows = (
        await conn.execute(
            select(T_PERSON).where(T_PERSON.c.plan_id == plan_id).order_by(T_PERSON.c.id)
        )
    ).mappings()
    return [ConsentPerson.model_validate(dict(r)) for r in rows]


async def insert_person(conn: AsyncConnection, person: ConsentPerson) -> None:
    await conn.execute(T_PERSON.insert().values(**person.model_dump(exclude={"id"})))


async def update_person(conn: AsyncConnection, person: ConsentPerson) -> None:
    """Overwrite what is recorded of the person ``person.ref`` of ``person.plan_id``."""
    values = person.model_dump(exclude={"id", "plan_id", "ref"})
    await conn.execute(
        update(T_PERSON)
        .where(and_(T_PERSON.c.plan_id == person.plan_id, T_PERSON.c.ref == person.ref))
        .values(**values)
    )


async def delete_people_except(conn: AsyncConnection, plan_id: str, refs: list[str]) -> None:
    """Forget the plan's people not among ``refs`` (the lead removed them from the form)."""
    condition = T_PERSON.c.plan_id == plan_id
    if refs:
        condition = and_(condition, T_PERSON.c.ref.not_in(refs))
    await conn.execute(T_PERSON.delete().where(condition))


# --- replaced consents (every participant) ----------------------------------------------------


def _of(consent_id: Any, plan_id: Any) -> Any:
    return and_(T_REPLACEMENT.c.consent_id == consent_id, T_REPLACEMENT.c.plan_id == plan_id)


def replaced_clause(consent_id: Any, plan_id: Any) -> Any:
    """Whether ``consent_id`` is replaced within ``plan_id`` (values or SQL expressions), as an
    EXISTS a larger read can select (``records.release_facts``)."""
    return select(T_REPLACEMENT.c.id).where(_of(consent_id, plan_id)).exists()


async def is_replaced(conn: AsyncConnection, consent_id: str, plan_id: str) -> bool:
    return bool((await conn.execute(select(replaced_clause(consent_id, plan_id)))).scalar())


async def record_replacement(
    conn: AsyncConnection, consent_id: str, plan_id: str, replaced_by: str, now: datetime
) -> None:
    """Mark ``consent_id`` replaced within ``plan_id`` by ``replaced_by``; a consent already
    replaced stays replaced by the first statement that replaced it (final, never undone)."""
    if await is_replaced(conn, consent_id, plan_id):
        return
    await conn.execute(
        T_REPLACEMENT.insert().values(
            consent_id=consent_id, plan_id=plan_id, replaced_by=replaced_by, recorded_at=now
        )
    )


def replacements_for_plan_sync(conn: Connection, plan_id: str) -> dict[str, str]:
    """Replaced consent id → the consent id of the statement that replaced it."""
    rows = conn.execute(
        select(T_REPLACEMENT.c.consent_id, T_REPLACEMENT.c.replaced_by).where(
            T_REPLACEMENT.c.plan_id == plan_id
        )
    )
    return {str(r[0]): str(r[1]) for r in rows}


async def replacements_for_plan(conn: AsyncConnection, plan_id: str) -> dict[str, str]:
    return await conn.run_sync(replacements_for_plan_sync, plan_id)


async def replacements_for_plan_engine(engine: AsyncEngine, plan_id: str) -> dict[str, str]:
    async with engine.connect() as conn:
        return await replacements_for_plan(conn, plan_id)


async def people_with_identity(conn: AsyncConnection, identity_hash: str) -> list[ConsentPerson]:
    """Everyone recorded on a plan with this identity hash: one resident, on each plan they
    are on (a guardian of two children is on two plans), oldest first."""
    rows = (
        await conn.execute(
            select(T_PERSON)
            .where(T_PERSON.c.identity_hash == identity_hash)
            .order_by(T_PERSON.c.id)
        )
    ).mappings()
    return [ConsentPerson.model_validate(dict(r)) for r in rows]


async def set_identity_hash(
    conn: AsyncConnection, plan_id: str, ref: str, identity_hash: str | None
) -> None:
    """Record (or, with None, forget) the keyed hash of the identity number of the person
    ``ref`` on ``plan_id``: how they find the plan when they sign in with e-identification."""
    await conn.execute(
        update(T_PERSON)
        .where(and_(T_PERSON.c.plan_id == plan_id, T_PERSON.c.ref == ref))
        .values(identity_hash=identity_hash)
    )
