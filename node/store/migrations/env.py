"""Alembic environment: migrations always run on a connection handed in by ``engine.migrate``."""

from alembic import context
from sqlmodel import SQLModel

import node.store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through node.store.engine.migrate (barnplan migrate)")
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
