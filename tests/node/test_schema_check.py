"""A node refuses to start on a store that lacks what its code uses, naming both sides; what
runs (release and schema revision) is shown by --version, /healthz and /metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import Connection

from node.config import load_config
from node.runtime import open_node
from node.services.setup import init_node
from node.store.engine import StoreError, create_engine
from node.store.migration_head import expected_revision
from node.version import current_build
from node.web.app import create_app
from protocol.clock import ManualClock
from tests.conftest import T0


@pytest.fixture
async def node_dir(tmp_path: Path, store_target: tuple[str, str]) -> Path:
    url, schema = store_target
    directory = tmp_path / "node"
    await init_node(
        directory,
        node_id="skola.test.se",
        agency_name="Testskolan",
        agency_kind="school",
        base_url="http://127.0.0.1:9",
        host="127.0.0.1",
        port=9,
        store_url=url,
        store_schema=schema,
        clock=ManualClock(T0),
    )
    return directory


def drop_sessions_since(conn: Connection) -> None:
    conn.execute(sa.text("ALTER TABLE app_user DROP COLUMN sessions_since"))


async def test_a_store_at_head_that_lacks_a_column_is_refused_naming_it(
    node_dir: Path,
) -> None:
    config = load_config(node_dir)
    engine = create_engine(config.database_url, config.store.schema_name)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(drop_sessions_since)
    finally:
        await engine.dispose()
    with pytest.raises(StoreError) as refused:
        await open_node(config, ManualClock(T0), run_migrations=False)
    message = str(refused.value)
    assert "app_user.sessions_since" in message
    assert f"revision {expected_revision()}" in message
    assert "barnplan migrate" in message


async def test_healthz_and_metrics_say_which_release_and_schema_run(node_dir: Path) -> None:
    build = current_build()
    assert build.version == "0.2.0" and build.schema == expected_revision() != "?"
    node = await open_node(load_config(node_dir), ManualClock(T0))
    try:
        async with TestClient(TestServer(create_app(node))) as client:
            health = await (await client.get("/healthz")).json()
            assert (health["version"], health["schema"]) == (build.version, build.schema)
            metrics = await (await client.get("/metrics")).text()
            assert (
                f'barnplan_build_info{{schema="{build.schema}",version="{build.version}"}} 1.0'
                in metrics
            )
    finally:
        await node.close()


def test_version_names_the_release_and_the_schema() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "node", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert shown == f"barnplan 0.2.0 (store schema {expected_revision()})"
