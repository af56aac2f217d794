"""The node's store: one engine and one transaction runner for every read and write.

Each query is one function written against a synchronous SQLAlchemy ``Connection`` (``records``,
``revocations``, ...); ``Store.read`` runs it in a read transaction and ``Store.write`` in a
write transaction, the same way on SQLite and PostgreSQL (as Synapse's ``runInteraction``). A
write transaction on SQLite is ``BEGIN IMMEDIATE`` behind this process's write lock
(``engine.begin_write``); on PostgreSQL row locks order the writers. Code that composes several
async steps in one transaction takes ``reading()``/``writing()`` for the connection itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .engine import begin_write

P = ParamSpec("P")
T = TypeVar("T")


class Store:
    """One engine, one transaction runner. Built once per node (``runtime.Node``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    async def read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(connection, *args, **kwargs)`` in one read transaction."""
        async with self.engine.connect() as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    async def write(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(connection, *args, **kwargs)`` in one write transaction, committed on return."""
        async with begin_write(self.engine) as conn:
            return await conn.run_sync(fn, *args, **kwargs)

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction's connection, for reads composed of async steps."""
        async with self.engine.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction's connection (committed on exit, rolled back on an error)."""
        async with begin_write(self.engine) as conn:
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()
