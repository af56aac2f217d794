"""Does the store have the tables and columns this release's code reads and writes?

Why: a store's alembic revision says which scripts ran, not what they did. Migration 0008 was
edited after it had landed (``sessions_since`` was added to it by a later commit), so a node set
up in between said "database at revision 0008", served ``/healthz`` — and then failed on every
query of ``app_user`` with a missing column. The revision alone cannot catch that; comparing the
store's real tables and columns with the models can, and it is cheap (one catalogue read per
table). ``open_node`` runs this after migrating, so a node refuses to start on a store it cannot
use and names both what the code expects and what the store lacks.
"""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from . import tables  # noqa: F401 - puts every table on SQLModel.metadata
from .engine import BACKUP_GUIDE, StoreError, engine_store_name
from .migration_head import expected_revision


def schema_differences(connection: Connection) -> list[str]:
    """What the store lacks of the models: missing tables and columns, as ``table.column``.

    Extra tables or columns are not differences: a store may be read by an older release
    during a rolling upgrade (and alembic's own table is not a model)."""
    found = inspect(connection)
    existing = set(found.get_table_names())
    missing: list[str] = []
    for name, table in sorted(SQLModel.metadata.tables.items()):
        if name not in existing:
            missing.append(f"table {name}")
            continue
        columns = {column["name"] for column in found.get_columns(name)}
        missing.extend(f"{name}.{c.name}" for c in table.columns if c.name not in columns)
    return missing


async def require_expected_schema(engine: AsyncEngine) -> None:
    """``StoreError`` naming the store, the revision the code expects and what the store lacks,
    if the store cannot serve this release's queries."""
    async with engine.connect() as conn:
        missing = await conn.run_sync(schema_differences)
    if not missing:
        return
    shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
    raise StoreError(
        f"the store {engine_store_name(engine)} does not have the schema this barnplan expects "
        f"(revision {expected_revision()}): it lacks {shown}. Run 'barnplan migrate --dir DIR'; "
        f"if that does not add them, restore a backup taken before the upgrade ({BACKUP_GUIDE}) "
        "and report the release you upgraded from"
    )
