"""sign-in through an OpenID provider: a user's provider and subject (unique together; a
personal identity number only as a keyed hash), whether their role follows the provider's
claims, and per web session the provider's ID token (for its logout), its session id (for its back-channel
logout) and the last request (for the idle timeout)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("app_user", sa.Column("oidc_issuer", sa.String(255), nullable=True))
    op.add_column("app_user", sa.Column("oidc_subject", sa.String(255), nullable=True))
    op.add_column(
        "app_user",
        sa.Column("role_from_claims", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_app_user_oidc_subject", "app_user", ["oidc_issuer", "oidc_subject"], unique=True
    )
    op.add_column("web_session", sa.Column("oidc_id_token", sa.Text(), nullable=True))
    op.add_column("web_session", sa.Column("oidc_sid", sa.String(255), nullable=True))
    op.create_index("ix_web_session_oidc_sid", "web_session", ["oidc_sid"])
    op.add_column(
        "web_session", sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("web_session", "last_seen_at")
    op.drop_index("ix_web_session_oidc_sid", table_name="web_session")
    op.drop_column("web_session", "oidc_sid")
    op.drop_column("web_session", "oidc_id_token")
    op.drop_index("ix_app_user_oidc_subject", table_name="app_user")
    op.drop_column("app_user", "role_from_claims")
    op.drop_column("app_user", "oidc_subject")
    op.drop_column("app_user", "oidc_issuer")
