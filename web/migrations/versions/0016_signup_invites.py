"""Sign-up invites: ``signup_invites``, the single-use links an admin issues when
``IMAGESHARK_SIGNUP=invite``.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from web.schema import Id, UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signup_invites",
        sa.Column("id", Id, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_by_account_id", Id, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_signup_invites"),
        sa.UniqueConstraint("token_hash", name="uq_signup_invites_token_hash"),
        sa.ForeignKeyConstraint(
            ["created_by_account_id"],
            ["accounts.id"],
            name="fk_signup_invites_created_by_account_id_accounts",
            ondelete="SET NULL",
        ),
    )


def downgrade() -> None:
    op.drop_table("signup_invites")
