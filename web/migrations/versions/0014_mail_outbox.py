"""Mail: the ``mail_outbox`` and ``mail_throttle`` tables.

``mail_outbox`` holds every mail queued by any replica until a sender delivers it (``sent``)
or gives up (``failed``), with its attempts and last error; ``mail_throttle`` the last send of
each key that may send at most once per interval (a room's digest).

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from web.schema import Id, UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_outbox",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("sender", sa.Text(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mail_outbox"),
    )
    op.create_index(
        "ix_mail_outbox_status_next_attempt_at", "mail_outbox", ["status", "next_attempt_at"]
    )
    op.create_table(
        "mail_throttle",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("last_sent_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_mail_throttle"),
    )


def downgrade() -> None:
    op.drop_table("mail_throttle")
    op.drop_index("ix_mail_outbox_status_next_attempt_at", "mail_outbox")
    op.drop_table("mail_outbox")
