"""revocation: unique per consent and plan, no longer per consent alone

A revocation revokes a consent within one plan: the plan of the consent's statement, or for a
tombstone the plan its notice named. A tombstone bound to another plan must not stop the
consent's own revocation from being recorded when it comes, so the uniqueness that made
``consent.revoke`` idempotent moves from ``consent_id`` to (``consent_id``, ``plan_id``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

NEW = "uq_revocation_consent_plan"
# gives SQLite's unnamed single-column UNIQUE a name that batch mode can drop
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _consent_only_unique() -> str | None:
    """The name of the UNIQUE (consent_id) constraint 0003 made (PostgreSQL names it itself)."""
    for constraint in sa.inspect(op.get_bind()).get_unique_constraints("revocation"):
        if constraint["column_names"] == ["consent_id"]:
            return constraint["name"]
    return None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("revocation", naming_convention=SQLITE_NAMES) as batch:
            batch.drop_constraint("uq_revocation_consent_id", type_="unique")
            batch.create_unique_constraint(NEW, ["consent_id", "plan_id"])
        return
    old = _consent_only_unique()
    if old is not None:
        op.drop_constraint(old, "revocation", type_="unique")
    op.create_unique_constraint(NEW, "revocation", ["consent_id", "plan_id"])


def downgrade() -> None:
    # fails if a consent has revocations in two plans: those cannot be told apart any more
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("revocation") as batch:
            batch.drop_constraint(NEW, type_="unique")
            batch.create_unique_constraint("uq_revocation_consent_id", ["consent_id"])
        return
    op.drop_constraint(NEW, "revocation", type_="unique")
    op.create_unique_constraint("revocation_consent_id_key", "revocation", ["consent_id"])
