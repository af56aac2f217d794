"""Async engines for SQLite (the embedded default) and PostgreSQL (production), and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")
BUSY_TIMEOUT_MS = 5000  # how long a SQLite writer waits for another process's write lock


class StoreUrlError(ValueError):
    """A store URL names a database this node cannot use."""


def async_url(url: str) -> str:
    """Map ``sqlite:///x`` and ``postgresql://...`` to their async drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise StoreUrlError(f"unsupported store URL {parsed.drivername!r}: use sqlite or postgresql")


def create_engine(url: str, schema_name: str = "") -> AsyncEngine:
    """Create the async engine; SQLite gets WAL and foreign keys, PostgreSQL a search_path."""
    target = async_url(url)
    kwargs: dict[str, Any] = {}
    if target.startswith("sqlite"):
        # a connection is a thread; an overflow connection is opened (thread, file, PRAGMAs)
        # and closed again on every use, so keep enough for a busy node's concurrent requests
        kwargs["pool_size"] = 32
        kwargs["max_overflow"] = 8
    if target.startswith("postgresql"):
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 10
        if schema_name:
            kwargs["connect_args"] = {"server_settings": {"search_path": schema_name}}
    engine = create_async_engine(target, **kwargs)
    if target.startswith("sqlite"):
        _sqlite_events(engine.sync_engine)
    return engine


def _sqlite_events(sync_engine: Engine, *, autocheckpoint: bool = True) -> None:
    @event.listens_for(sync_engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        # SQLAlchemy's documented recipe: let SQLAlchemy, not the driver, emit BEGIN, so
        # savepoints work and writers can take the write lock up front (BEGIN IMMEDIATE).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if not autocheckpoint:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _sqlite_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def sqlite_sync_twin(engine: AsyncEngine) -> Engine | None:
    """A synchronous engine on the same SQLite file (same PRAGMAs), or None for PostgreSQL.

    aiosqlite runs every statement, fetch and cursor close as a round trip to its connection
    thread; on a busy 2-core machine each round trip costs 0.1-1 ms of scheduling, which made a
    fragment request cost tens of them. Hot paths use this engine instead: a few indexed reads
    run directly (microseconds; WAL readers never wait for the writer) and a whole log batch
    runs as ONE call in a worker thread.

    Its connections commit on the event loop thread, so SQLite's automatic WAL checkpoint (which
    copies ~1,000 pages back and syncs the file, milliseconds) is off on them: the exchange log
    runs checkpoints in a worker thread instead (``ExchangeLog``).
    """
    if engine.dialect.name != "sqlite":
        return None
    sync = create_sync_engine(
        engine.url.set(drivername="sqlite"),
        pool_size=8,
        max_overflow=8,
        connect_args={"check_same_thread": False},
    )
    _sqlite_events(sync, autocheckpoint=False)
    return sync


def alembic_config() -> Config:
    from alembic.config import Config  # alembic is imported only to migrate

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (alembic), inside one transaction."""

    def upgrade(connection: Connection) -> None:
        from alembic import command

        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


def write_lock(engine: AsyncEngine) -> asyncio.Lock | None:
    """SQLite: one asyncio lock per database (pool) and event loop that every writer in this
    process takes before ``BEGIN IMMEDIATE``, so writers queue in the event loop (FIFO, no
    delay) instead of in SQLite's busy handler, which sleeps 1, 2, 5 ... 100 ms between tries:
    16 concurrent write transactions took 165 ms that way, 29 ms queued. Other processes still
    wait through busy_timeout. None on PostgreSQL (row locks; writers run in parallel).

    The locks live on the engine's pool (shared by every ``execution_options`` copy of the
    engine), never in a module-level registry."""
    if engine.dialect.name != "sqlite":
        return None
    pool = engine.sync_engine.pool
    per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
        pool.__dict__.setdefault("_barnplan_write_locks", weakref.WeakKeyDictionary())
    )
    loop = asyncio.get_running_loop()
    lock = per_loop.get(loop)
    if lock is None:
        lock = per_loop[loop] = asyncio.Lock()
    return lock


@contextlib.asynccontextmanager
async def begin_write(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction. On SQLite it is ``BEGIN IMMEDIATE``: the write lock is taken up
    front (waiting up to busy_timeout), so a transaction that reads then writes can never fail
    with SQLITE_BUSY_SNAPSHOT because another writer committed in between. Writers of this
    process take turns first (``write_lock``). Not re-entrant: never nest two."""
    lock = write_lock(engine)
    async with contextlib.AsyncExitStack() as stack:
        if lock is not None:
            await stack.enter_async_context(lock)
        conn = await stack.enter_async_context(engine.execution_options(immediate=True).begin())
        yield conn


async def read_with(
    engine: AsyncEngine, sync: Engine | None, fn: Callable[..., T], *args: Any
) -> T:
    """Run ``fn(connection, *args)``, a read written for a synchronous connection, in one read
    transaction: on SQLite directly on the synchronous twin ``sync`` (a few indexed reads cost
    microseconds there, against a thread round trip per statement through aiosqlite; WAL readers
    never wait), elsewhere on the async engine through ``run_sync``."""
    if sync is not None:
        with sync.connect() as conn:
            return fn(conn, *args)
    async with engine.connect() as aconn:
        return await aconn.run_sync(fn, *args)
