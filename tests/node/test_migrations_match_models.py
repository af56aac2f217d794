"""The migrations build exactly the tables the models declare, on SQLite and PostgreSQL.

A column added to ``node/store/tables.py`` without a migration (or a migration that differs from
its model) would pass every test that creates tables from the models and fail on an operator's
upgraded store; alembic's own comparison catches it here.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import node.store.tables  # noqa: F401 - puts every table on SQLModel.metadata
from node.store.engine import create_engine, migrate


def differences(conn: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn), SQLModel.metadata))


async def test_a_migrated_store_has_the_models_tables_and_nothing_else(
    store_target: tuple[str, str],
) -> None:
    url, schema = store_target
    engine = create_engine(url, schema, create=True)
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(differences) == []
    finally:
        await engine.dispose()
