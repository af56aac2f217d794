"""Shared fixtures: an injected clock, and a store on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web_app
from hypothesis import HealthCheck, settings

from protocol.clock import ManualClock

if TYPE_CHECKING:
    from tests.support.federation import RunningNode

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

POSTGRES_URL = os.environ.get("BARNPLAN_TEST_POSTGRES_URL", "")
T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
# Each store test runs on both backends. The PostgreSQL runs are marked slow (a fresh schema
# migrated per node takes seconds): the quick run (-m "not slow") stays on SQLite, the full run
# (CI) takes both.
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]
# Fixtures that start another process: a real Chromium, or the Node.js OpenID provider (staff's
# or residents'). A test using one is slow wherever it lives, without each module saying so.
PROCESS_FIXTURES = frozenset({"browser", "oidc_provider", "family"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Keep what collection imported out of the garbage collector's way: some 300,000 objects
    (the test modules and every library they import, FHIR's models among them) that live until
    the process ends. A full collection walks every object it tracks while the event loop the
    in-process nodes of a test share stands still; frozen, these are not walked (measured over
    tests/integration: ~0.7 s instead of ~0.9 s per full collection, 830,000 objects instead of
    1,130,000)."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _forget_stopped_apps() -> Iterator[None]:
    """Let the apps a test started be collected when it ends.

    aiohttp caches the middleware chain it builds for each (handler, app) pair in a module-level
    LRU of 1024 entries (``web_app._cached_build_middleware``), so in a worker that runs test
    after test every stopped node's app stayed alive, with its store engine, statement caches
    and metrics, until evicted: the heap grew by some 4,000 objects per node, and full garbage
    collections, which stop the event loop every node of a test shares, grew to seconds (a
    ``plan.link`` once timed out after 5 s in CI that way). A production process has one app,
    and the cache is right for it."""
    yield
    cache = getattr(web_app, "_cached_build_middleware", None)  # a private name: may go
    if cache is not None:
        cache.cache_clear()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture(params=BACKENDS)
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(store URL, schema name) on each backend; PostgreSQL gets a fresh schema per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'node.db'}", ""
        return
    if not POSTGRES_URL:
        pytest.skip("BARNPLAN_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    run_psql(f'CREATE SCHEMA "{schema}"')
    try:
        yield POSTGRES_URL, schema
    finally:
        run_psql(f'DROP SCHEMA "{schema}" CASCADE')


StoreFactory = Callable[[str], tuple[str, str]]


@pytest.fixture(params=BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Make a fresh store per node name: an SQLite file, or a PostgreSQL schema (dropped after)."""
    if request.param == "postgresql" and not POSTGRES_URL:
        pytest.skip("BARNPLAN_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    schemas: list[str] = []

    def make(name: str) -> tuple[str, str]:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / (name + '.db')}", ""
        schema = f"t_{uuid.uuid4().hex[:12]}"
        run_psql(f'CREATE SCHEMA "{schema}"')
        schemas.append(schema)
        return POSTGRES_URL, schema

    yield make
    for schema in schemas:
        run_psql(f'DROP SCHEMA "{schema}" CASCADE')


def run_psql(sql: str) -> None:
    """Run one statement on the test PostgreSQL with a short-lived synchronous connection."""
    import asyncio

    import asyncpg

    async def go() -> None:
        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    # a thread of its own, so this works from sync and async fixtures alike
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, go()).result()


@pytest.fixture
async def sqlite_pair(tmp_path: Path, clock: ManualClock) -> AsyncIterator[list[RunningNode]]:
    """A school and a social-services node in this process, on SQLite, trusting each other.
    (The federation support is imported only when a test asks for this.)"""
    from tests.support.federation import SCHOOL, SOCIAL, sqlite_federation

    async with sqlite_federation(tmp_path, [SCHOOL, SOCIAL], clock) as nodes:
        yield nodes


@pytest.fixture
async def migrated_engine(store_target: tuple[str, str]) -> AsyncIterator[Any]:
    """A new store at the migration head, on each backend (SQLite file, PostgreSQL schema)."""
    from node.store.engine import create_engine, migrate

    url, schema = store_target
    engine = create_engine(url, schema, create=True)
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def _noop() -> AsyncIterator[None]:
    yield
