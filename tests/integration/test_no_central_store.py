"""Invariant 1, no central store: after assembly the lead's database holds no peer content.

Every remote fragment carries a unique marker in every text field. After the lead assembled
the shared plan (JSON and FHIR) the test reads every row of every table of the lead's store -
the tables the models declare and any other table the database has - and finds none of the
remote markers, while the lead's own marker is there (so the search does look in the right
place). On SQLite the database files themselves are searched too: content that was never
written cannot be in them, even in free pages or the write-ahead log.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import node.store.tables  # noqa: F401 - registers every table on SQLModel.metadata
from tests.support.federation import RunningNode
from tests.support.plans import (
    add_child,
    add_fragment,
    create_linked_plan,
    record_consent,
    rich_fragment,
)


async def dump_every_table(running: RunningNode) -> dict[str, str]:
    """{table: every row stringified} for every table the models declare or the store has."""
    engine = running.node.engine
    async with engine.connect() as conn:
        present = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        declared = set(SQLModel.metadata.tables)
        assert declared <= present, f"tables missing from the store: {declared - present}"
        dumped = {}
        for name in sorted(present | declared):
            rows = (await conn.execute(text(f'SELECT * FROM "{name}"'))).all()
            dumped[name] = "\n".join(repr(tuple(row)) for row in rows)
    return dumped


async def test_lead_stores_nothing_it_received(trio: list[RunningNode], tmp_path: Path) -> None:
    school, social, bup = trio
    tag = uuid.uuid4().hex[:10]
    own, soc, bup_marker = f"LOCAL-SKO-{tag}", f"REMOTE-SOC-{tag}", f"REMOTE-BUP-{tag}"
    child = await add_child(school)
    await add_child(social)
    await add_child(bup)
    plan_id = await create_linked_plan(school, child, [social, bup])
    await add_fragment(school, plan_id, rich_fragment("education", own))
    await add_fragment(social, plan_id, rich_fragment("social", soc))
    await add_fragment(bup, plan_id, rich_fragment("mental_health", bup_marker, "healthy"))
    grants = {social.node_id: ["social"], bup.node_id: ["mental_health"]}
    await record_consent(school, plan_id, grants, school.node.clock.now())

    status, shared = await school.api("GET", f"/plans/{plan_id}/shared", "lead")
    assert status == 200, shared
    status, bundle = await school.api("GET", f"/plans/{plan_id}/shared.fhir", "lead")
    assert status == 200, bundle
    received = json.dumps([shared, bundle], ensure_ascii=False)
    for marker in (own, soc, bup_marker):  # the markers did travel into the assembled plan
        assert marker in received
    assert "Intern anteckning" not in received  # internal notes never leave their node
    await school.node.exchange_log.close()  # flush anything still queued

    tables = await dump_every_table(school)
    assert any(own in rows for rows in tables.values()), "sanity: the lead's own marker"
    for marker in (soc, bup_marker):
        found = [name for name, rows in tables.items() if marker in rows]
        assert found == [], f"{marker} stored by the lead in {found}"

    engine = school.node.engine
    if engine.dialect.name == "sqlite":
        database = Path(str(engine.url.database))
        files = [p for p in (tmp_path / school.node_id).rglob("*") if p.is_file()]
        files += [p for p in database.parent.glob(database.name + "*") if p.is_file()]
        data = b"".join(p.read_bytes() for p in files)
        assert own.encode() in data, "sanity: the lead's own marker is in its files"
        assert soc.encode() not in data
        assert bup_marker.encode() not in data
