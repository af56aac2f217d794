"""records and exchange log: users, children, plans, fragments, consents, hash-chained log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def ts(name: str, nullable: bool = False, index: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, index=index)


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        ts("created_at"),
    )
    op.create_table(
        "child",
        sa.Column("child_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("personnummer", sa.String(12), nullable=False, index=True),
        ts("created_at"),
    )
    op.create_table(
        "plan",
        sa.Column("plan_id", sa.String(36), primary_key=True),
        sa.Column("child_id", sa.String(36), sa.ForeignKey("child.child_id"), nullable=True),
        sa.Column("role", sa.String(12), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("lead_node", sa.String(253), nullable=False),
        sa.Column("lead_professional", sa.String(320), nullable=False),
        sa.Column("responsible_node", sa.String(253), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("link_personnummer", sa.String(12), nullable=True),
        ts("created_at"),
    )
    op.create_table(
        "plan_participant",
        sa.Column("plan_id", sa.String(36), sa.ForeignKey("plan.plan_id"), primary_key=True),
        sa.Column("node_id", sa.String(253), primary_key=True),
        sa.Column("status", sa.String(12), nullable=False),
    )
    op.create_table(
        "fragment_version",
        sa.Column("fragment_id", sa.String(36), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("plan_id", sa.String(36), sa.ForeignKey("plan.plan_id"), nullable=False,
                  index=True),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("indicators", sa.String(200), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("authored_by", sa.String(64), nullable=False),
        ts("authored_at"),
    )
    op.create_table(
        "consent",
        sa.Column("consent_id", sa.String(36), primary_key=True),
        sa.Column("plan_id", sa.String(36), nullable=False, index=True),
        sa.Column("statement", sa.Text(), nullable=False),
        ts("valid_until"),
        ts("received_at"),
    )
    op.create_table(
        "exchange_log",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        ts("at", index=True),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("peer", sa.String(253), nullable=False, index=True),
        sa.Column("message_type", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("plan_id", sa.String(36), nullable=True, index=True),
        sa.Column("consent_id", sa.String(36), nullable=True),
        sa.Column("purpose", sa.String(20), nullable=True),
        sa.Column("professional", sa.String(320), nullable=True),
        sa.Column("categories", sa.String(400), nullable=False, server_default=""),
        sa.Column("released", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("withheld", sa.String(2000), nullable=False, server_default=""),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(40), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in ("exchange_log", "consent", "fragment_version", "plan_participant", "plan",
                  "child", "app_user"):
        op.drop_table(table)
