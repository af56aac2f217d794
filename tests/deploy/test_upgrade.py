"""Upgrading a node: a store at each earlier migration head, full of data, migrated to head.

The earlier heads are computed from alembic's script directory, so this test follows the
migrations as they are added; one more start is the 0008 that first landed (594a892, without
``app_user.sessions_since``), which the edited 0008 left behind. Every table that exists at that
revision gets a row (inserted with plain SQL over the reflected tables, so it does not depend on
today's models); after the upgrade every row is still there with the same values, and the node
opens, serves its signed document, lists and adds users, answers the API and serves its pages —
not just "migrate printed success". Runs on SQLite and on PostgreSQL (a fresh schema).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from node.config import CONFIG_NAME, load_config, render_config
from node.runtime import open_node
from node.services.users import add_user
from node.store.engine import alembic_config, create_engine, current_revision, migrate
from node.store.records import list_users
from node.web.app import create_app
from protocol.clock import ManualClock
from protocol.documents import build_node_document, verify_node_document
from protocol.encoding import b64url_encode
from protocol.keys import SigningKey, fingerprint, save_private_key
from tests.conftest import T0

pytestmark = pytest.mark.slow  # every earlier schema head migrated and opened, on each store

NODE = "skola.test.se"
PEER = "ifo.test.se"
T_DATA = datetime(2026, 11, 20, 8, 30, 15, tzinfo=UTC)


def revisions() -> tuple[str, list[str]]:
    """(current head, every earlier revision, oldest first)."""
    script = ScriptDirectory.from_config(alembic_config())
    [head_id] = script.get_heads()
    earlier = []
    for rev in script.walk_revisions():  # newest first
        assert not isinstance(rev.down_revision, tuple), "expects a linear history"
        if rev.revision != head_id:
            earlier.append(rev.revision)
    return head_id, earlier[::-1]


HEAD, EARLIER = revisions()
# the 0008 that first landed (594a892): disabled_at only; the edited script added sessions_since
FIRST_0008 = "0008-as-first-landed"


def first_landed_0008(conn: Connection) -> None:
    kind = sa.DateTime(timezone=True).compile(dialect=conn.dialect)
    conn.execute(sa.text(f"ALTER TABLE app_user ADD COLUMN disabled_at {kind}"))
    conn.execute(sa.text("UPDATE alembic_version SET version_num = '0008'"))


def reflect(conn: Connection) -> sa.MetaData:
    metadata = sa.MetaData()
    metadata.reflect(conn)
    metadata.remove(metadata.tables["alembic_version"])
    return metadata


def generic_value(table: sa.Table, column: sa.Column[Any]) -> Any:
    """A value of the column's type that fits it; new column types must be added here."""
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return True
    if isinstance(kind, sa.Integer):
        return 7
    if isinstance(kind, sa.Float | sa.Numeric):
        return 1.5
    if isinstance(kind, sa.DateTime):
        return T_DATA
    if isinstance(kind, sa.Date):
        return date(2026, 11, 20)
    if isinstance(kind, sa.LargeBinary):
        return b"\x00\x01"
    if isinstance(kind, sa.JSON):
        return {"k": "v"}
    if isinstance(kind, sa.String):  # Text included
        text = f"{table.name}.{column.name}-ä"
        return text[: kind.length] if kind.length else text
    raise AssertionError(f"add a value for {table.name}.{column.name} of type {kind!r}")


def special_rows(key: SigningKey, peer_key: SigningKey) -> dict[str, dict[str, Any]]:
    """Rows the node reads when it opens, so they must be real: its key and a peer."""
    peer_doc = build_node_document(
        node_id=PEER,
        agency_name="Testkommun IFO",
        agency_kind="social_services",
        base_url="http://127.0.0.1:9",
        key=peer_key,
        issued_at=T_DATA,
    )
    return {
        "own_key": {
            "key_id": key.key_id,
            "public": b64url_encode(key.public_raw),
            "valid_from": key.valid_from,
            "valid_until": None,
            "file": "node.key",
            "introduction": None,  # (0013 on) a signed key change, or none for a first key
        },
        "peer": {
            "node_id": PEER,
            "base_url": "http://127.0.0.1:9",
            "agency_name": "Testkommun IFO",
            "agency_kind": "social_services",
            "document": json.dumps(peer_doc),
            "fingerprint": fingerprint(peer_key.public_raw),
        },
    }


def fill(conn: Connection, special: dict[str, dict[str, Any]]) -> list[str]:
    """Insert one row into every table (parents first, foreign keys pointing at them)."""
    metadata = reflect(conn)
    inserted: dict[str, dict[str, Any]] = {}
    for table in metadata.sorted_tables:
        row = {c.name: generic_value(table, c) for c in table.columns}
        for column in table.columns:
            for fk in column.foreign_keys:
                parent = fk.column
                row[column.name] = inserted[parent.table.name][parent.name]
        # only the columns the start revision has (a later one added ``introduction``)
        row.update({k: v for k, v in special.get(table.name, {}).items() if k in table.c})
        conn.execute(table.insert().values(**row))
        inserted[table.name] = row
    return sorted(inserted)


def snapshot(conn: Connection, columns: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Every row of every table (or of the given tables and columns), in primary-key order."""
    metadata = reflect(conn)
    result: dict[str, Any] = {}
    for name, table in metadata.tables.items():
        if columns is not None and name not in columns:
            continue
        wanted = [table.c[c] for c in (columns[name] if columns else table.c.keys())]
        order = list(table.primary_key.columns) or wanted
        rows = conn.execute(sa.select(*wanted).order_by(*order)).mappings().all()
        result[name] = [dict(r) for r in rows]
    return result


async def run(engine: AsyncEngine, func: Any, *args: Any) -> Any:
    async with engine.begin() as conn:
        return await conn.run_sync(func, *args)


@pytest.mark.parametrize("start", [*EARLIER, FIRST_0008])
async def test_upgrade_from_an_earlier_head_keeps_every_row_and_the_node_works(
    tmp_path: Path, store_target: tuple[str, str], start: str
) -> None:
    head = HEAD
    url, schema = store_target
    directory = tmp_path / "node"
    directory.mkdir()
    (directory / CONFIG_NAME).write_text(
        render_config(
            node_id=NODE,
            agency_name="Testskolan",
            agency_kind="school",
            base_url="http://127.0.0.1:9",
            host="127.0.0.1",
            port=9,
            store_url=url,
            store_schema=schema,
        )
    )
    key = SigningKey.generate(NODE, T0 - timedelta(days=30))
    save_private_key(key, directory / "node.key")
    peer_key = SigningKey.generate(PEER, T0 - timedelta(days=30))

    engine = create_engine(url, schema, create=True)
    try:
        if start == FIRST_0008:
            await migrate(engine, revision="0007")
            await run(engine, first_landed_0008)
        else:
            await migrate(engine, revision=start)
        tables = await run(engine, fill, special_rows(key, peer_key))
        assert {"own_key", "peer"} <= set(tables)
        before = await run(engine, snapshot)
        assert set(before) == set(tables) and all(len(rows) == 1 for rows in before.values())

    finally:
        await engine.dispose()

    clock = ManualClock(T0)
    node = await open_node(load_config(directory), clock)  # migrates, as serve and the CLI do
    try:
        assert await current_revision(node.engine) == head
        columns = {name: list(rows[0]) for name, rows in before.items()}
        assert await run(node.engine, snapshot, columns) == before
        users = ["app_user.user_id-ä"] if "app_user" in tables else []
        assert [u.user_id for u in await list_users(node.engine)] == users
        _, token = await add_user(node.engine, "lead", "Lea Lind", "lead", clock.now())
        assert node.identity.key.key_id == key.key_id
        assert node.keyring.node_ids() == [PEER]
        async with TestClient(TestServer(create_app(node))) as client:
            resp = await client.get("/.well-known/barnplan/node")
            assert resp.status == 200
            _, keys = verify_node_document(await resp.json(), NODE)
            assert [k.key_id for k in keys] == [key.key_id]
            health = await client.get("/healthz")
            assert health.status == 200
            assert (await health.json())["schema"] == head
            plans = await client.get("/api/v1/plans", headers={"Authorization": f"Bearer {token}"})
            assert plans.status == 200, await plans.text()
            login = await client.get("/login")
            assert login.status == 200
    finally:
        await node.close()
