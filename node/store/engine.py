"""Async engines for SQLite (the embedded default) and PostgreSQL (production), and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import re
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import event, inspect
from sqlalchemy.engine import URL, Connection, Engine, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..errors import Unavailable
from .migration_head import VERSION_TABLE
from .sqlite_driver import loop_dbapi

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")


SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
BACKUP_GUIDE = "deploy/OPERATIONS.md, section 3 'Backup and restore'"
RESTORE = f"restore it from a backup ({BACKUP_GUIDE})"
# a database holding either of these holds (part of) a node's store
STORE_TABLES = (VERSION_TABLE, "own_key")


class StoreError(Unavailable):
    """The store cannot be used as it is (missing, not a database, written by a newer release,
    unreachable); the message names the store and says what to do."""

    code = "store_unavailable"


class StoreUrlError(StoreError, ValueError):
    """A store URL names a database this node cannot use."""

    code = "store_url_invalid"


def _redacted(url: str) -> str:
    """``url`` with any password between ``user:`` and ``@`` replaced, for messages; with or
    without a ``scheme://`` in front (a URL that failed to parse may lack one)."""
    return re.sub(r"((?://|^)[^/@:]*:)[^/@]*@", r"\1***@", url)


def parse_url(url: str) -> URL:
    """The store URL parsed, or ``StoreUrlError`` saying it is not one."""
    try:
        return make_url(url)
    except ArgumentError:
        raise StoreUrlError(
            f"store URL {_redacted(url)!r} is not a URL: use postgresql://USER@HOST/DATABASE "
            "(store.url in barnplan.toml, or init --store-url), or none for node.db in the node "
            "directory"
        ) from None


def sqlite_file(url: str) -> Path | None:
    """The database file an SQLite URL names; None for PostgreSQL, memory and URI filenames."""
    parsed = parse_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if parsed.query.get("uri") == "true" or database.startswith("file:"):
        return None
    return Path(database)


def store_name(url: str, schema_name: str = "") -> str:
    """How messages name a store: an SQLite file's path, or a PostgreSQL URL without its
    password (and the schema, if one is set)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    shown = parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=True)
    return f"{shown} (schema {schema_name})" if schema_name else shown


def engine_store_name(engine: AsyncEngine) -> str:
    return store_name(engine.url.render_as_string(hide_password=True))


def async_url(url: str) -> str:
    """Map ``sqlite:///x`` and ``postgresql://...`` to their async drivers."""
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise StoreUrlError(f"unsupported store URL {parsed.drivername!r}: use sqlite or postgresql")


def create_engine(url: str, schema_name: str = "", *, create: bool = False) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL and foreign keys, PostgreSQL a search_path.

    Unless ``create`` (``init``, a test's new store), the store must already hold barnplan's
    tables, and an SQLite file must exist: SQLite would otherwise create an empty file on first
    use, and a command would fail on that empty store, or migrate it, instead of saying the
    node's store is missing. A store that is missing, holds no barnplan tables, or cannot be
    opened or reached at all raises ``StoreError`` naming it and what to do.
    """
    target = async_url(url)
    path = sqlite_file(url)
    if path is not None:
        _check_sqlite_file(path, create)
    name = store_name(url, schema_name)
    kwargs: dict[str, Any] = {}
    if target.startswith("sqlite"):
        # a connection is a thread; an overflow connection is opened (thread, file, PRAGMAs)
        # and closed again on every use, so keep enough for a busy node's concurrent requests
        kwargs["pool_size"] = 32
        kwargs["max_overflow"] = 8
        kwargs["module"] = loop_dbapi()  # statements on the event loop (sqlite_driver)
    if target.startswith("postgresql"):
        kwargs["pool_size"] = 10
        kwargs["max_overflow"] = 10
        if schema_name:
            kwargs["connect_args"] = {"server_settings": {"search_path": schema_name}}
    engine = create_async_engine(target, **kwargs)
    if target.startswith("sqlite"):
        _sqlite_events(engine.sync_engine)
    _connect_errors(engine.sync_engine, name)
    if not create:
        _require_tables(engine.sync_engine, name)
    return engine


def _check_sqlite_file(path: Path, create: bool) -> None:
    if create:
        parent = path.absolute().parent
        if not parent.is_dir():
            raise StoreError(f"cannot create the store {path}: directory {parent} does not exist")
        return
    if not path.exists():
        raise StoreError(
            f"the store {path} is missing: {RESTORE}, or set store.url in barnplan.toml "
            "if it was moved"
        )
    if path.is_dir():
        raise StoreError(f"the store {path} is a directory, not a database file: {RESTORE}")
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreError(f"cannot read the store {path}: {exc.strerror}") from None
    if header != SQLITE_HEADER:
        what = "an empty file" if not header else "not an SQLite database"
        raise StoreError(f"the store {path} is {what}: {RESTORE}")


def _require_tables(sync_engine: Engine, name: str) -> None:
    """On the first connection: ``StoreError`` if the database holds no barnplan tables (an
    empty PostgreSQL schema, another program's SQLite file). Such a store holds no node; it
    must not be migrated into one by a command that expected this node's store."""

    @event.listens_for(sync_engine, "first_connect")
    def _holds_tables(dbapi_conn: Any, _record: Any) -> None:
        if sync_engine.dialect.name == "sqlite":
            names = ", ".join(f"'{table}'" for table in STORE_TABLES)
            query = f"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ({names})"
        else:  # to_regclass looks in the connection's search_path: the store's schema
            query = "SELECT " + " + ".join(f"count(to_regclass('{t}'))" for t in STORE_TABLES)
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(query)
            (found,) = cursor.fetchone()
        finally:
            cursor.close()
        if not found:
            raise StoreError(
                f"the store {name} holds no barnplan tables, so no node: {RESTORE}, or correct "
                "store.url (and store.schema_name) in barnplan.toml"
            )


def _connect_errors(sync_engine: Engine, name: str) -> None:
    """Failing to open or reach the store at all raises ``StoreError`` naming it. Errors of
    statements on an open connection (constraints, busy, ...) stay the caller's to handle."""

    @event.listens_for(sync_engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        """asyncpg's refused or timed-out connect is an ``OSError`` that never reaches
        ``handle_error``: it surfaced as a bare "[Errno 111] Connect call failed"."""
        try:
            return dialect.connect(*cargs, **cparams)
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise StoreError(
                f"cannot connect to the store {name}: {reason}: check store.url in "
                "barnplan.toml and that the database server is running"
            ) from exc

    @event.listens_for(sync_engine, "handle_error")
    def _cannot_connect(context: ExceptionContext) -> None:
        if context.connection is not None:
            return
        original = context.original_exception
        if getattr(original, "sqlite_errorcode", 0) & 0xFF in (5, 6):  # BUSY, LOCKED: wait
            return
        reason = (str(original).strip().splitlines() or [type(original).__name__])[0]
        if sync_engine.dialect.name == "sqlite":
            raise StoreError(
                f"cannot open the store {name}: {reason}: check the file and its directory "
                f"(owner, permissions), or {RESTORE}"
            ) from original
        raise StoreError(
            f"cannot connect to the store {name}: {reason}: check store.url in barnplan.toml "
            "and the database server"
        ) from original


def _sqlite_events(sync_engine: Engine) -> None:
    @event.listens_for(sync_engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        # SQLAlchemy's documented recipe: let SQLAlchemy, not the driver, emit BEGIN, so
        # savepoints work and writers can take the write lock up front (BEGIN IMMEDIATE).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # no busy_timeout: the driver never waits on the loop, it retries a statement refused
        # with SQLITE_BUSY in a worker thread that waits there (sqlite_driver.BUSY_TIMEOUT_MS)
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _sqlite_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("immediate", False)
        # straight to the driver's cursor: a statement through SQLAlchemy costs more than BEGIN
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        finally:
            cursor.close()


def alembic_config() -> Config:
    from alembic.config import Config  # alembic is imported only to migrate

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Bring the database to ``revision`` (alembic) on ``connection``, in its transaction.

    A store stamped with a revision these scripts do not know was written by a newer release:
    ``StoreError`` says so (alembic would fail with "Can't locate revision")."""
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    # one ScriptDirectory for the check and the upgrade (``command.upgrade`` would load every
    # script a second time: most of a new store's set-up)
    scripts = ScriptDirectory.from_config(cfg)
    known = {script.revision for script in scripts.walk_revisions()}
    unknown = sorted(set(MigrationContext.configure(connection).get_current_heads()) - known)
    if unknown:
        url = connection.engine.url.render_as_string(hide_password=True)
        schema = connection.dialect.default_schema_name  # the search_path's, on PostgreSQL
        name = store_name(url, (schema or "") if connection.dialect.name == "postgresql" else "")
        raise StoreError(
            f"the store {name} was written by a newer barnplan (revision {', '.join(unknown)}): "
            f"upgrade barnplan to that release, or restore a backup taken before it ran "
            f"({BACKUP_GUIDE})"
        )
    with EnvironmentContext(
        cfg,
        scripts,
        fn=lambda current, _context: scripts._upgrade_revs(revision, current),
        destination_rev=revision,
    ):
        scripts.run_env()


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (alembic), inside one transaction."""
    async with engine.begin() as conn:
        await conn.run_sync(upgrade, revision)


async def schema_exists(engine: AsyncEngine) -> bool:
    """PostgreSQL: does the schema of the connection's search_path exist? (True on SQLite.)"""
    if engine.dialect.name != "postgresql":
        return True
    async with engine.connect() as conn:
        return (await conn.exec_driver_sql("SELECT current_schema()")).scalar() is not None


async def holds_store(engine: AsyncEngine) -> bool:
    """Does the database already hold barnplan's tables (a node's store, or part of one)?
    On SQLite, opening a missing file creates it: ask only about a file that exists."""

    def check(connection: Connection) -> bool:
        tables = inspect(connection)
        return any(tables.has_table(table) for table in STORE_TABLES)

    async with engine.connect() as conn:
        return await conn.run_sync(check)


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
    16 concurrent write transactions took 165 ms that way, 29 ms queued. Other processes' locks
    are still waited for (in a worker thread, ``sqlite_driver``). None on PostgreSQL (row locks;
    writers run in parallel).

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
    front (waiting up to ``sqlite_driver.BUSY_TIMEOUT_MS`` for another process), so a
    transaction that reads then writes can never fail with SQLITE_BUSY_SNAPSHOT because another
    writer committed in between. Writers of this process take turns first (``write_lock``).
    Not re-entrant: never nest two."""
    lock = write_lock(engine)
    async with contextlib.AsyncExitStack() as stack:
        if lock is not None:
            await stack.enter_async_context(lock)
        conn = await stack.enter_async_context(engine.execution_options(immediate=True).begin())
        yield conn
