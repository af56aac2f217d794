"""Async engines for SQLite (the embedded default) and PostgreSQL (production), and migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"


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
    if target.startswith("postgresql"):
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 10
        if schema_name:
            kwargs["connect_args"] = {"server_settings": {"search_path": schema_name}}
    engine = create_async_engine(target, **kwargs)
    if target.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # SQLAlchemy's documented recipe: let SQLAlchemy, not the driver, emit BEGIN, so
            # savepoints work and writers can take the write lock up front (BEGIN IMMEDIATE).
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            immediate = conn.get_execution_options().get("immediate", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (alembic), inside one transaction."""

    def upgrade(connection: Connection) -> None:
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


def begin_write(engine: AsyncEngine) -> Any:
    """A write transaction. On SQLite it is ``BEGIN IMMEDIATE``: the write lock is taken up
    front (waiting up to busy_timeout), so a transaction that reads then writes can never fail
    with SQLITE_BUSY_SNAPSHOT because another writer committed in between."""
    return engine.execution_options(immediate=True).begin()
