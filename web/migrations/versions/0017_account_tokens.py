"""Account mail: the ``account_tokens`` table of single-use mailed links, and
``accounts.notify_pending``.

Each token row is one link (``purpose`` ``verify`` or ``reset``) of one account: the SHA-256
of its random token, when it expires and when it was used. ``notify_pending`` (true by
default) says whether the account is mailed a digest of photos waiting in its rooms.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from web.schema import Id, UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("notify_pending", sa.Boolean(), nullable=False, server_default="1")
        )
    op.create_table(
        "account_tokens",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_account_tokens_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_account_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_account_tokens_token_hash"),
    )
    op.create_index("ix_account_tokens_account_id", "account_tokens", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_account_tokens_account_id", "account_tokens")
    op.drop_table("account_tokens")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("notify_pending")
