"""Host accounts: ``accounts``, ``account_sessions``, ``room_hosts`` and ``rooms.owner_account_id``.

An account signs in with its e-mail address and password (argon2id); each signed-in browser is
a row of ``account_sessions`` holding the SHA-256 of its cookie's token. ``room_hosts`` lists
the accounts that may act as a room's host (its owner, co-hosts); the owner is also
``rooms.owner_account_id``. Existing rooms keep no owner: their host key still controls them,
and ``POST /api/rooms/{token}/claim`` gives one to an account.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from web.schema import Id, UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", Id, nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("email_verified", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("email", name="uq_accounts_email"),
    )
    op.create_table(
        "account_sessions",
        sa.Column("id", Id, nullable=False),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("device", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_account_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_account_sessions_token_hash"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_account_sessions_account_id_accounts",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_account_sessions_account_id", "account_sessions", ["account_id"])
    op.create_table(
        "room_hosts",
        sa.Column("room_id", Id, nullable=False),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("room_id", "account_id", name="pk_room_hosts"),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name="fk_room_hosts_room_id_rooms", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_room_hosts_account_id_accounts",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_room_hosts_account_id", "room_hosts", ["account_id"])
    if op.get_bind().dialect.name == "sqlite":
        # Plain ALTER TABLE with the reference inline (see migration 0004 on batch rebuilds of
        # ``rooms``); SQLite cannot add a constraint to an existing table.
        op.execute(
            "ALTER TABLE rooms ADD COLUMN owner_account_id INTEGER "
            "REFERENCES accounts (id) ON DELETE SET NULL"
        )
    else:
        op.add_column("rooms", sa.Column("owner_account_id", Id, nullable=True))
        op.create_foreign_key(
            "fk_rooms_owner_account_id_accounts",
            "rooms",
            "accounts",
            ["owner_account_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_index("ix_rooms_owner_account_id", "rooms", ["owner_account_id"])


def downgrade() -> None:
    op.drop_index("ix_rooms_owner_account_id", "rooms")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_rooms_owner_account_id_accounts", "rooms", type_="foreignkey")
    op.drop_column("rooms", "owner_account_id")  # ALTER TABLE DROP COLUMN (SQLite 3.35+)
    op.drop_table("room_hosts")
    op.drop_table("account_sessions")
    op.drop_table("accounts")
