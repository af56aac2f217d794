"""The consent-people and replacement queries, on SQLite and PostgreSQL (the latter slow):
people are kept per plan by reference; a replacement is final and per plan; the release read
sees a replaced consent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from node.store import consent_people as people_store
from node.store import records
from node.store.engine import begin_write, create_engine, migrate
from node.store.tables import ConsentPerson

T = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PLAN = "11111111-1111-4111-8111-111111111111"
OTHER_PLAN = "22222222-2222-4222-8222-222222222222"
OLD = "33333333-3333-4333-8333-333333333333"
NEW = "44444444-4444-4444-8444-444444444444"
NEWER = "55555555-5555-4555-8555-555555555555"


@pytest.fixture
async def engine(store_target: tuple[str, str]) -> AsyncIterator[AsyncEngine]:
    url, schema = store_target
    engine = create_engine(url, schema, create=True)
    await migrate(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


def person(ref: str, name: str, answer: str = "not_asked", plan_id: str = PLAN) -> ConsentPerson:
    return ConsentPerson(
        plan_id=plan_id,
        ref=ref,
        name=name,
        role="guardian",
        required=True,
        answer=answer,
        updated_at=T,
    )


async def test_people_are_kept_per_plan_updated_by_ref_and_forgotten_when_removed(
    engine: AsyncEngine,
) -> None:
    async with begin_write(engine) as conn:
        await people_store.insert_person(conn, person("p1", "Anna Testsson"))
        await people_store.insert_person(conn, person("p2", "Bertil Testsson"))
        await people_store.insert_person(conn, person("p1", "Other", plan_id=OTHER_PLAN))
    async with begin_write(engine) as conn:
        changed = person("p2", "Bertil Testsson", "consents")
        changed.answered_on, changed.method = "2026-11-21", "e_form"
        await people_store.update_person(conn, changed)
    async with engine.connect() as conn:
        people = await people_store.people_for_plan(conn, PLAN)
    assert [(p.ref, p.name, p.answer, p.method) for p in people] == [
        ("p1", "Anna Testsson", "not_asked", None),
        ("p2", "Bertil Testsson", "consents", "e_form"),
    ]
    async with begin_write(engine) as conn:
        await people_store.delete_people_except(conn, PLAN, ["p2"])
    async with engine.connect() as conn:
        assert [p.ref for p in await people_store.people_for_plan(conn, PLAN)] == ["p2"]
        assert [p.name for p in await people_store.people_for_plan(conn, OTHER_PLAN)] == ["Other"]


async def test_a_replacement_is_per_plan_final_and_keeps_its_first_replacer(
    engine: AsyncEngine,
) -> None:
    async with begin_write(engine) as conn:
        await people_store.record_replacement(conn, OLD, PLAN, NEW, T)
        await people_store.record_replacement(conn, OLD, PLAN, NEWER, T)  # no change
    async with engine.connect() as conn:
        assert await people_store.is_replaced(conn, OLD, PLAN)
        assert not await people_store.is_replaced(conn, OLD, OTHER_PLAN)
        assert not await people_store.is_replaced(conn, NEW, PLAN)
        assert await people_store.replacements_for_plan(conn, PLAN) == {OLD: NEW}
        assert await people_store.replacements_for_plan(conn, OTHER_PLAN) == {}


async def test_the_release_read_sees_a_replaced_consent_in_its_own_plan_only(
    engine: AsyncEngine,
) -> None:
    statement = {"consent_id": OLD, "plan_id": PLAN}
    async with begin_write(engine) as conn:
        await records.insert_consent(conn, statement, T, T)
        # a replacement recorded for the same id in another plan replaces nothing here
        await people_store.record_replacement(conn, OLD, OTHER_PLAN, NEW, T)
    async with engine.connect() as conn:
        facts = await conn.run_sync(records.release_facts, PLAN, OLD, ["social"])
    assert facts.statement is not None and not facts.replaced
    async with begin_write(engine) as conn:
        await people_store.record_replacement(conn, OLD, PLAN, NEW, T)
    async with engine.connect() as conn:
        facts = await conn.run_sync(records.release_facts, PLAN, OLD, ["social"])
    assert facts.replaced and facts.fragments == {}
