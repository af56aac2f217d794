"""The driver under the store's async engine on SQLite: statements run on the event loop thread.

SQLAlchemy's async SQLite dialect normally drives aiosqlite, which runs every SQLite call in a
thread of its own and hands each result back to the event loop: four hand-offs per statement
(open a cursor, execute, fetch, close), each waiting for the busy loop's next turn and for the
GIL. A release decision's two indexed reads cost a dozen of those, a log batch twenty; the reads
themselves take microseconds. This driver runs each statement where SQLAlchemy asks for it, on
the event loop thread, as one call: execute, fetch every row, close the cursor. Every query
still goes through SQLAlchemy and the one async engine, on one connection pool; only the driver
underneath is different.

Running on the loop is right for SQLite in WAL mode: readers never wait, and a writer waits only
for another process's write lock (a CLI command writing the same file). Connections therefore
never wait inside SQLite (``busy_timeout`` 0): a statement refused with SQLITE_BUSY is retried
in a worker thread that waits up to ``BUSY_TIMEOUT_MS`` there, so the loop keeps serving while
another process writes. Retrying is safe: a statement refused with SQLITE_BUSY did nothing.

Used by ``engine.create_engine`` through ``create_async_engine(module=...)``, per engine: no
library state is changed.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

BUSY_TIMEOUT_MS = 5000  # how long a statement waits (in a worker thread) for another writer
_Result = tuple[Any, list[Any], int, int | None]


def _run(raw: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Result:
    """One statement: execute, fetch every row, close the cursor;
    (description, rows, rowcount, lastrowid)."""
    cursor = raw.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def _run_waiting(raw: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Result:
    """``_run`` waiting for another connection's lock (in a worker thread)."""
    raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        return _run(raw, operation, parameters, many)
    finally:
        raw.execute("PRAGMA busy_timeout=0")


def is_busy(error: BaseException) -> bool:
    """SQLITE_BUSY (or one of its extended codes): another connection holds the lock."""
    code = getattr(error, "sqlite_errorcode", None)
    return (
        isinstance(error, sqlite3.OperationalError)
        and code is not None
        and (code & 0xFF == sqlite3.SQLITE_BUSY)
    )


async def execute(raw: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Result:
    """A statement on the loop, without a hand-off; if another process holds the lock, waited
    for in a worker thread."""
    try:
        return _run(raw, operation, parameters, many)
    except sqlite3.OperationalError as error:
        if not is_busy(error):
            raise
    return await asyncio.to_thread(_run_waiting, raw, operation, parameters, many)


class LoopSqlite:
    """The part of ``aiosqlite.Connection`` SQLAlchemy's adapter uses, run on the loop."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._connection: sqlite3.Connection | None = raw
        self._conn = raw

    async def commit(self) -> None:  # (SQLAlchemy's adapter awaits these; see LoopConnection)
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    def cursor(self) -> LoopServerCursor:
        return LoopServerCursor(self._conn)


class LoopServerCursor:
    """A streaming cursor (``AsyncConnection.stream``): rows fetched in parts, on the loop."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self._cursor = raw.cursor()
        self.arraysize = 1

    async def __aenter__(self) -> LoopServerCursor:
        return self

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    async def execute(self, operation: str, parameters: Any = None) -> None:
        if parameters is None:
            self._cursor.execute(operation)
        else:
            self._cursor.execute(operation, parameters)

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size or self.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class LoopCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor: each statement is one call on the loop (``execute``)."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # no driver cursor is held open
        self._soft_closed_memoized = {}  # type: ignore[assignment]
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass

    async def _async_soft_close(self) -> None:
        return None  # nothing is left open: every row was fetched with the statement

    def close(self) -> None:
        self._rows.clear()

    async def _statement(self, operation: Any, parameters: Any, many: bool) -> None:
        """The statement, right here; only one refused as busy waits, in a worker thread (the
        connection is this cursor's alone meanwhile: SQLAlchemy checked it out). A coroutine,
        awaited once per statement: SQLAlchemy's async API requires one await per call."""
        result = await execute(self._connection._conn, operation, parameters, many)
        self._description, rows, self._rowcount, self._lastrowid = result
        self._rows = collections.deque(rows)

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            await_(self._statement(operation, parameters, False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        try:
            await_(self._statement(operation, seq_of_parameters, True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)


class LoopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = LoopCursor  # type: ignore[assignment]

    def commit(self) -> None:
        raw = self._connection._conn
        if raw.in_transaction:
            try:
                await_(execute(raw, "COMMIT", None, False))
            except Exception as error:
                self._handle_exception(error)

    def rollback(self) -> None:
        raw = self._connection._conn
        if self._connection._connection is not None and raw.in_transaction:
            try:
                raw.rollback()  # never waits: it only gives up this connection's own locks
            except Exception as error:
                self._handle_exception(error)

    @property
    def isolation_level(self) -> str | None:
        level: str | None = self._connection._conn.isolation_level
        return level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection._conn.isolation_level = value


class LoopDbapi(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite adaptation, over ``sqlite3`` connections used on the loop."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        kw.pop("async_creator_fn", None)
        kw.pop("iter_chunk_size", None)
        kw.pop("loop", None)
        kw["check_same_thread"] = False  # a busy statement is retried in a worker thread
        kw["timeout"] = 0  # never wait inside SQLite on the loop: see ``execute``
        raw = sqlite3.connect(*arg, **kw)
        return LoopConnection(self, LoopSqlite(raw))  # type: ignore[arg-type]


def loop_dbapi() -> LoopDbapi:
    import aiosqlite  # its exception and version attributes, as SQLAlchemy's dialect reads them

    return LoopDbapi(aiosqlite, sqlite3)
