"""``serve`` skips alembic only for a store already at head; any other store is migrated as before.

``migration_head`` reads the scripts' revision ids without importing them; these tests hold it to
alembic's own answer, on SQLite and PostgreSQL, so a new migration can never be skipped.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from node.config import CONFIG_NAME, load_config, render_config
from node.runtime import open_node
from node.store.engine import alembic_config, create_engine, current_revision, migrate
from node.store.migration_head import at_head, script_heads
from protocol.encoding import b64url_encode
from protocol.keys import SigningKey, save_private_key
from tests.conftest import T0


def alembic_heads() -> tuple[str, str | None]:
    """(head, the revision before it) as alembic sees them."""
    script = ScriptDirectory.from_config(alembic_config())
    [head] = script.get_heads()
    revision = script.get_revision(head)
    assert revision is not None
    down = revision.down_revision
    return head, down if isinstance(down, str) else None


def add_own_key(conn: Connection, key: SigningKey) -> None:
    """The node's key row, written over the reflected table (the schema of an older revision)."""
    table = sa.Table("own_key", sa.MetaData(), autoload_with=conn)
    row = {
        "key_id": key.key_id,
        "public": b64url_encode(key.public_raw),
        "valid_from": key.valid_from,
        "file": "node.key",
    }
    conn.execute(table.insert().values(**{k: v for k, v in row.items() if k in table.c}))


def test_script_heads_are_alembics_heads() -> None:
    assert script_heads() == frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def test_two_heads_or_an_unreadable_script_mean_no_single_head(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (tmp_path / "b.py").write_text('revision: str = "b"\ndown_revision: str | None = "a"\n')
    assert script_heads(tmp_path) == {"b"}
    (tmp_path / "c.py").write_text('revision = "c"\ndown_revision = "a"\n')
    assert script_heads(tmp_path) == {"b", "c"}
    (tmp_path / "d.py").write_text('revision = "d"\ndown_revision = ("b", "c")\n')
    assert script_heads(tmp_path) == {"d"}
    (tmp_path / "e.py").write_text("revision = make_id()\ndown_revision = 'd'\n")
    assert script_heads(tmp_path) == frozenset()


async def test_at_head_only_when_the_store_is_stamped_with_the_head(
    store_target: tuple[str, str],
) -> None:
    url, schema = store_target
    _, previous = alembic_heads()
    engine = create_engine(url, schema, create=True)
    try:
        assert not await at_head(engine)  # a new store: no version table
        if previous is not None:
            await migrate(engine, revision=previous)
            assert not await at_head(engine)
        await migrate(engine)
        assert await at_head(engine)
    finally:
        await engine.dispose()


async def test_serving_migrates_a_store_that_is_behind(
    tmp_path: Path, store_target: tuple[str, str]
) -> None:
    url, schema = store_target
    head, previous = alembic_heads()
    directory = tmp_path / "node"
    directory.mkdir()
    (directory / CONFIG_NAME).write_text(
        render_config(
            node_id="skola.test.se",
            agency_name="Testskolan",
            agency_kind="school",
            base_url="http://127.0.0.1:9",
            host="127.0.0.1",
            port=9,
            store_url=url,
            store_schema=schema,
        )
    )
    key = SigningKey.generate("skola.test.se", T0 - timedelta(days=1))
    save_private_key(key, directory / "node.key")
    config = load_config(directory)
    engine = create_engine(url, schema, create=True)
    try:
        await migrate(engine, revision=previous or "head")
        async with engine.begin() as conn:
            await conn.run_sync(add_own_key, key)
        assert await at_head(engine) == (previous is None)
    finally:
        await engine.dispose()

    node = await open_node(config)
    try:
        assert await current_revision(node.engine) == head
    finally:
        await node.close()
    node = await open_node(config)  # at head now: opened without alembic
    try:
        assert await current_revision(node.engine) == head
    finally:
        await node.close()
