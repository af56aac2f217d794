"""A node whose store is missing, replaced, from a newer release or another node's, and ``init``
over a store that already holds a node: every command says so in one line naming the store and
what to do (exit 1, no traceback), and creates or changes nothing. Real CLI processes; SQLite
and PostgreSQL where both apply."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from node.config import CONFIG_NAME, load_config
from node.services import setup
from protocol.clock import ManualClock
from tests.conftest import POSTGRES_URL, run_psql
from tests.support.nodes import NodeProcess, barnplan, init_node

pytestmark = pytest.mark.slow  # barnplan CLI subprocesses, seconds each

GUIDE = "deploy/OPERATIONS.md"
# commands that open the store: through the node (migrating), directly, writing, and serve
STORE_COMMANDS = (
    ("children", "list"),
    ("keys", "list"),
    ("keys", "rotate"),
    ("peers", "list"),
    ("migrate",),
    ("serve",),
)


def refused(ran: subprocess.CompletedProcess[str]) -> str:
    """The one ``error:`` line of a command that failed as a user error should."""
    assert ran.returncode == 1, (ran.returncode, ran.stdout, ran.stderr)
    assert "Traceback" not in ran.stderr, ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), ran.stderr
    return lines[0]


def run_in(node: NodeProcess, *command: str) -> subprocess.CompletedProcess[str]:
    return barnplan(*command, "--dir", str(node.directory), check=False)


def files(directory: Path) -> dict[str, bytes | None]:
    """Every entry under ``directory``: a file's bytes, None for a directory."""
    return {
        str(p.relative_to(directory)): None if p.is_dir() else p.read_bytes()
        for p in sorted(directory.rglob("*"))
    }


def psql_value(sql: str) -> Any:
    """One value from the test PostgreSQL (a short-lived connection in a thread of its own)."""
    import asyncpg

    async def go() -> Any:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, go()).result()


def needs_postgres() -> None:
    if not POSTGRES_URL:
        pytest.skip("BARNPLAN_TEST_POSTGRES_URL is not set (.ci/run sets it)")


def school(tmp_path: Path, store_target: tuple[str, str] = ("", "")) -> NodeProcess:
    return init_node(tmp_path, "skola.test.se", "school", "Testskolan", *store_target)


def test_a_missing_store_is_named_by_every_command_and_not_created(tmp_path: Path) -> None:
    node = school(tmp_path)
    (node.directory / "node.db").unlink()
    before = files(node.directory)
    for command in STORE_COMMANDS:
        line = refused(run_in(node, *command))
        assert f"the store {node.directory.resolve() / 'node.db'} is missing" in line, command
        assert "restore it from a backup" in line and GUIDE in line
        assert files(node.directory) == before, command  # no empty node.db, no rotated key


@pytest.mark.parametrize(
    "replacement", ["junk", "damaged", "empty", "directory", "another program's"]
)
def test_a_store_that_is_not_this_nodes_database_is_named_and_left_alone(
    tmp_path: Path, replacement: str
) -> None:
    node = school(tmp_path)
    store = node.directory / "node.db"
    store.unlink()
    if replacement == "junk":
        store.write_bytes(b"not a database\n" * 100)
    elif replacement == "damaged":  # an SQLite header, then garbage: SQLite itself refuses it
        store.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8000)
    elif replacement == "empty":
        store.touch()
    elif replacement == "directory":
        store.mkdir()
    else:
        with sqlite3.connect(store) as db:
            db.execute("CREATE TABLE recipes (name TEXT)")
    before = files(node.directory)
    for command in (("children", "list"), ("keys", "list"), ("serve",)):
        line = refused(run_in(node, *command))
        assert f"the store {store.resolve()}" in line and GUIDE in line, line
        assert files(node.directory) == before, command


def test_an_empty_postgresql_schema_is_not_taken_for_the_nodes_store(tmp_path: Path) -> None:
    needs_postgres()
    node = school(tmp_path)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    run_psql(f'CREATE SCHEMA "{schema}"')
    try:
        config = node.directory / CONFIG_NAME
        text = config.read_text(encoding="utf-8")
        text = text.replace('url = ""', f'url = "{POSTGRES_URL}"', 1)
        config.write_text(text.replace('schema_name = ""', f'schema_name = "{schema}"', 1))
        for command in (("children", "list"), ("keys", "list"), ("migrate",), ("serve",)):
            line = refused(run_in(node, *command))
            assert f"(schema {schema}) holds no barnplan tables" in line, line
        tables = f"SELECT count(*) FROM pg_tables WHERE schemaname = '{schema}'"
        assert psql_value(tables) == 0  # nothing migrated into it
    finally:
        run_psql(f'DROP SCHEMA "{schema}" CASCADE')


def test_a_store_from_a_newer_release_says_to_upgrade_or_restore(
    tmp_path: Path, store_target: tuple[str, str]
) -> None:
    node = school(tmp_path, store_target)
    url, schema = store_target
    stamp = "UPDATE alembic_version SET version_num = '0099'"
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            db.execute(stamp)
    else:
        run_psql(stamp.replace("alembic_version", f'"{schema}".alembic_version'))
    for command in (("children", "list"), ("migrate",), ("serve",)):
        line = refused(run_in(node, *command))
        assert "was written by a newer barnplan (revision 0099)" in line, line
        assert "upgrade barnplan" in line and GUIDE in line


def test_another_nodes_key_file_is_named_in_one_line(tmp_path: Path) -> None:
    node = school(tmp_path)
    other = init_node(tmp_path, "ifo.test.se", "social_services", "Testkommun IFO")
    shutil.copy(other.directory / "node.key", node.directory / "node.key")
    for command in (("children", "list"), ("keys", "rotate"), ("serve",)):
        line = refused(run_in(node, *command))
        assert f"key file {node.directory.resolve() / 'node.key'} holds" in line, line
        assert "but the store expects skola.test.se#" in line


def test_a_store_without_this_nodes_key_is_named_in_one_line(tmp_path: Path) -> None:
    node = school(tmp_path)
    with sqlite3.connect(node.directory / "node.db") as db:
        db.execute("DELETE FROM own_key")
    line = refused(run_in(node, "children", "list"))
    assert "holds no current key of this node" in line and GUIDE in line


def test_init_refuses_a_store_that_already_holds_a_node_and_changes_nothing(
    tmp_path: Path, store_target: tuple[str, str]
) -> None:
    """barnplan.toml and the key lost, the store kept: init used to report success over it,
    and every command then failed (two current keys)."""
    node = school(tmp_path, store_target)
    url, schema = store_target
    kept = {name: (node.directory / name).read_bytes() for name in (CONFIG_NAME, "node.key")}
    for name in kept:
        (node.directory / name).unlink()
    before = files(tmp_path)
    again = barnplan(
        "init", str(node.directory), "--id", "skola.test.se", "--agency-name", "Testskolan",
        "--kind", "school", *(("--store-url", url, "--store-schema", schema) if url else ()),
        check=False,
    )  # fmt: skip
    line = refused(again)
    assert "already" in line and "not overwriting" in line and GUIDE in line, line
    assert files(tmp_path) == before
    if not url.startswith("sqlite"):
        assert psql_value(f'SELECT count(*) FROM "{schema}".own_key') == 1
    for name, data in kept.items():  # restored from backup, the node works as before
        (node.directory / name).write_bytes(data)
    assert run_in(node, "children", "list").returncode == 0


def test_init_on_a_sqlite_file_that_exists_refuses_it(tmp_path: Path) -> None:
    target = tmp_path / "n"
    target.mkdir()
    (target / "node.db").write_bytes(b"")
    ran = barnplan(
        "init", str(target), "--id", "skola.test.se", "--agency-name", "T", "--kind", "school",
        check=False,
    )  # fmt: skip
    assert "already exists; not overwriting it" in refused(ran)
    assert files(target) == {"node.db": b""}


@pytest.mark.parametrize(
    ("store_url", "expected"),
    [
        ("not a url", "store URL 'not a url' is not a URL"),
        ("mysql://x@db.example/barnplan", "unsupported store URL 'mysql'"),
        ("sqlite:////nonexistent/dir/x.db", "directory /nonexistent/dir does not exist"),
    ],
)
def test_init_with_a_store_url_it_cannot_use_makes_nothing(
    tmp_path: Path, store_url: str, expected: str
) -> None:
    target = tmp_path / "new" / "node"
    ran = barnplan(
        "init", str(target), "--id", "skola.test.se", "--agency-name", "T", "--kind", "school",
        "--store-url", store_url, check=False,
    )  # fmt: skip
    assert expected in refused(ran)
    assert list(tmp_path.iterdir()) == []  # not even the directories


def test_init_into_a_postgresql_schema_that_does_not_exist_makes_nothing(tmp_path: Path) -> None:
    needs_postgres()
    target = tmp_path / "node"
    schema = f"t_missing_{uuid.uuid4().hex[:8]}"
    ran = barnplan(
        "init", str(target), "--id", "skola.test.se", "--agency-name", "T", "--kind", "school",
        "--store-url", POSTGRES_URL, "--store-schema", schema, check=False,
    )  # fmt: skip
    assert f"(schema {schema}) has no such schema" in refused(ran)
    assert not target.exists()


def test_an_unreachable_postgresql_store_is_named_without_its_password(tmp_path: Path) -> None:
    needs_postgres()
    target = tmp_path / "node"
    wrong = make_url(POSTGRES_URL).set(username="nobody_here", password="s3cret")
    url = wrong.render_as_string(hide_password=False)
    ran = barnplan(
        "init", str(target), "--id", "skola.test.se", "--agency-name", "T", "--kind", "school",
        "--store-url", url, check=False,
    )  # fmt: skip
    line = refused(ran)
    assert "cannot connect to the store postgresql://nobody_here:***@" in line, line
    assert "s3cret" not in line and not target.exists()


@pytest.mark.parametrize(
    ("store_url", "expected"),
    [
        ("not a url", "store URL 'not a url' is not a URL"),
        ("sqlite:////nonexistent/dir/x.db", "the store /nonexistent/dir/x.db is missing"),
    ],
)
def test_a_store_url_edited_into_the_config_that_cannot_be_used_is_named(
    tmp_path: Path, store_url: str, expected: str
) -> None:
    node = school(tmp_path)
    config = node.directory / CONFIG_NAME
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('url = ""', f'url = "{store_url}"', 1), encoding="utf-8")
    before = files(node.directory)
    for command in (("children", "list"), ("keys", "list"), ("serve",)):
        assert expected in refused(run_in(node, *command)), command
    assert files(node.directory) == before


async def test_init_that_fails_half_way_leaves_no_store_and_no_files(
    tmp_path: Path,
    store_target: tuple[str, str],
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store's tables and the node's key are made in one transaction: an init that fails
    after migrating leaves nothing that a second init would have to refuse."""
    url, schema = store_target

    async def broken(*_args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(setup.peer_store, "insert_own_key", broken)
    target = tmp_path / "new" / "node"
    args: dict[str, Any] = {
        "node_id": "skola.test.se",
        "agency_name": "Testskolan",
        "agency_kind": "school",
        "base_url": "http://127.0.0.1:9",
        "host": "127.0.0.1",
        "port": 9,
        "store_url": url,
        "store_schema": schema,
        "clock": clock,
    }
    with pytest.raises(OSError, match="disk full"):
        await setup.init_node(target, **args)
    assert list(tmp_path.iterdir()) == []  # no config, key, node.db (-wal, -shm) nor directory
    if not url.startswith("sqlite"):
        assert psql_value(f"SELECT count(*) FROM pg_tables WHERE schemaname = '{schema}'") == 0
    monkeypatch.undo()
    config = await setup.init_node(target, **args)  # and a second init just works
    assert config == load_config(target)
