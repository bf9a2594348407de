"""The relational schema, as SQLAlchemy Core tables shared by SQLite and PostgreSQL.

The tables are the single description of the schema in code; Alembic migrations under
``web/migrations`` create and change them in the database (never ``metadata.create_all``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite keeps text without an offset, so values read back
    are marked UTC here. Naive datetimes are refused on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY, so 64-bit keys are INTEGER there.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

rooms = Table(
    "rooms",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token", String(64), nullable=False, unique=True),
    Column("host_key_hash", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime(), nullable=True),
    # The newest room event's sequence number; bumped in every transaction that changes the
    # room, which also serialises those transactions per room (the row lock).
    Column("last_seq", BigInteger(), nullable=False, server_default="0"),
    # Host controls (migration 0002).
    Column("uploads_open", Boolean(), nullable=False, server_default="1"),
    Column("moderation", String(16), nullable=False, server_default="off"),
    # Kept in clear on purpose: it is a shared word the host tells guests (like a Wi-Fi
    # password), shown back to the host; the join token is what protects the room.
    Column("passcode", String(64), nullable=True),
    Column("wall_mode", String(16), nullable=False, server_default="spotlight"),
    Column("wall_qr_size", String(16), nullable=False, server_default="medium"),
    Column("wall_captions", Boolean(), nullable=False, server_default="1"),
    Column("wall_blanked", Boolean(), nullable=False, server_default="0"),
    # Least seconds each new photo stays large in the wall's spotlight (migration 0008).
    Column("wall_min_seconds", Integer(), nullable=False, server_default="5"),
    # The wall's full-screen "scan to join" intermission (migration 0010): every that many
    # minutes (0: off), for that many seconds.
    Column("wall_intermission_minutes", Integer(), nullable=False, server_default="0"),
    Column("wall_intermission_seconds", Integer(), nullable=False, server_default="20"),
    Column("max_uploads_per_guest", Integer(), nullable=True),
    Column("max_images", Integer(), nullable=True),
    # How many image rows (approved and pending) the room holds; kept by the triggers of
    # migration 0003 on every insert and delete of an image, never written by the service.
    Column("stored_images", Integer(), nullable=False, server_default="0"),
    # Abuse limits (migration 0004): a byte quota over the originals' sizes, the bytes the
    # room holds (kept by triggers like stored_images), and uploads only by participants.
    Column("max_bytes", BigInteger(), nullable=True),
    Column("stored_bytes", BigInteger(), nullable=False, server_default="0"),
    Column("require_join", Boolean(), nullable=False, server_default="0"),
    # Days after expires_at the gallery stays readable; null: off (migration 0009).
    Column("gallery_grace_days", Integer(), nullable=True),
    # The short code of the join URL /j/{code} (migration 0005).
    Column("code", String(8), nullable=True),
    Index("ix_rooms_code", "code", unique=True),
    # Originals (migration 0006): whether guest pages downscale before sending, and whether
    # stored originals keep their GPS tags (blanked at ingest otherwise).
    Column("downscale_uploads", Boolean(), nullable=False, server_default="0"),
    Column("keep_location", Boolean(), nullable=False, server_default="0"),
    # Whether the wall shows the passcode to the room (migration 0011); the passcode itself
    # only reaches viewers the room admits (host, participants), never the public view.
    Column("wall_show_passcode", Boolean(), nullable=False, server_default="0"),
    # The host account that owns the room (migration 0013): set when a signed-in host creates
    # or claims it; null for rooms only a host key controls. room_hosts holds the same owner.
    Column(
        "owner_account_id",
        Id,
        ForeignKey("accounts.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Index("ix_rooms_owner_account_id", "owner_account_id"),
)

participants = Table(
    "participants",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("room_id", Id, ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_participants_room_id", "room_id"),
)

images = Table(
    "images",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("room_id", Id, ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
    Column(
        "participant_id",
        Id,
        ForeignKey("participants.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("seq", BigInteger(), nullable=False),
    Column("caption", Text(), nullable=True),
    Column("storage_key", String(64), nullable=False, unique=True),
    Column("sha256", String(64), nullable=False),
    Column("mime_type", String(64), nullable=False),
    Column("original_bytes", BigInteger(), nullable=False),
    Column("original_width", Integer(), nullable=False),
    Column("original_height", Integer(), nullable=False),
    Column("width", Integer(), nullable=False),
    Column("height", Integer(), nullable=False),
    Column("thumb_width", Integer(), nullable=False),
    Column("thumb_height", Integer(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # "approved" (visible to the room) or "pending" (waiting in the host's moderation queue).
    Column("status", String(16), nullable=False, server_default="approved"),
    UniqueConstraint("room_id", "sha256", name="uq_images_room_id_sha256"),
    Index("ix_images_room_id_id", "room_id", "id"),
    Index("ix_images_room_id_status_id", "room_id", "status", "id"),
    Index("ix_images_participant_id", "participant_id"),
    sqlite_autoincrement=True,  # never reuse a deleted image's id (see migration 0002)
)

room_events = Table(
    "room_events",
    metadata,
    Column("room_id", Id, ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", BigInteger(), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("payload", JSON(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

service_secrets = Table(
    "service_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
)

# Direct uploads (migration 0012): asked for, then "processing" once completed, then "done"
# (with the image) or "failed" (with the error a direct POST would have answered). The SQL is
# in web/images/upload_repository.py.
uploads = Table(
    "uploads",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("room_id", Id, ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
    Column(
        "participant_id",
        Id,
        ForeignKey("participants.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("by_host", Boolean(), nullable=False, server_default="0"),
    Column("content_type", String(64), nullable=False),
    Column("size", BigInteger(), nullable=False),
    Column("caption", Text(), nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("image_id", Id, ForeignKey("images.id", ondelete="SET NULL"), nullable=True),
    Column("error_status", Integer(), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    # When processing was last (re)started by some replica.
    Column("claimed_at", UTCDateTime(), nullable=True),
    Index("ix_uploads_room_id", "room_id"),
    Index("ix_uploads_status_expires_at", "status", "expires_at"),
)

# Host accounts (migration 0013): the SQL is in web/accounts/repository.py. ``email`` is stored
# normalised (web/accounts/service.py: trimmed, domain in lower case) and unique.
accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(100), nullable=True),
    # argon2id in the PHC string format (argon2-cffi), parameters included.
    Column("password_hash", String(255), nullable=False),
    Column("email_verified", Boolean(), nullable=False, server_default="0"),
    Column("is_admin", Boolean(), nullable=False, server_default="0"),
    Column("disabled", Boolean(), nullable=False, server_default="0"),
    Column("created_at", UTCDateTime(), nullable=False),
    # Whether the owner is mailed a digest of photos waiting for approval (migration 0017).
    Column("notify_pending", Boolean(), nullable=False, server_default="1"),
)

# A signed-in browser: the cookie carries a random token, only its SHA-256 is kept here.
# A session ends when its row goes (sign-out) or ``session_days`` after ``last_used_at``.
account_sessions = Table(
    "account_sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    # What the User-Agent said, summarised ("Firefox on Linux").
    Column("device", String(100), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=False),
    Index("ix_account_sessions_account_id", "account_id"),
)

# Who may act as a room's host by signing in: its owner (also ``rooms.owner_account_id``) and
# its co-hosts. The SQL is in web/rooms/repository.py.
room_hosts = Table(
    "room_hosts",
    metadata,
    Column("room_id", Id, ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    # "owner" or "cohost"
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_room_hosts_account_id", "account_id"),
)

# Mail (migration 0014): the outbox every replica's sender takes due mail from, and the last
# send of each throttled key. The SQL is in web/mail/outbox.py.
mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sender", Text(), nullable=False),
    Column("recipients", JSON(), nullable=False),
    # The whole RFC 5322 message, headers (Message-ID, Date) included, as sent.
    Column("message", LargeBinary(), nullable=False),
    # "queued" (waiting, or being sent), then "sent" or "failed".
    Column("status", String(16), nullable=False),
    Column("attempts", Integer(), nullable=False, server_default="0"),
    # Due when queued; a sender's claim moves it past the send (a dead sender's claim lapses).
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("last_error", Text(), nullable=True),
    Index("ix_mail_outbox_status_next_attempt_at", "status", "next_attempt_at"),
)

mail_throttle = Table(
    "mail_throttle",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("last_sent_at", UTCDateTime(), nullable=False),
)

# Co-host invites (migration 0015): single-use links. The SQL is in
# web/rooms/invite_repository.py.
cohost_invites = Table(
    "cohost_invites",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("room_id", Id, ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
    # SHA-256 (hex) of the link's random token: a copy of the database opens no invite.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("email", String(320), nullable=True),
    Column("created_by", Id, ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    # Set once, by the account that accepted it; a used invite opens nothing again.
    Column("accepted_by", Id, ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True),
    Column("accepted_at", UTCDateTime(), nullable=True),
    Index("ix_cohost_invites_room_id", "room_id"),
)

# A single-use sign-up invite (migration 0016; ``IMAGESHARK_SIGNUP=invite``), issued by an
# admin: the link carries a random token, only its SHA-256 is kept. The SQL is in
# web/admin/repository.py.
signup_invites = Table(
    "signup_invites",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column(
        "created_by_account_id", Id, ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True
    ),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    # Set once, when an account is created with it; a used invite is refused (409).
    Column("used_at", UTCDateTime(), nullable=True),
)

# Single-use links mailed to an account (migration 0017): address verification and password
# reset. The link carries a random token, only its SHA-256 is kept. The SQL is in
# web/accounts/repository.py.
account_tokens = Table(
    "account_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # "verify" or "reset": a token works only for its purpose.
    Column("purpose", String(16), nullable=False),
    Column("account_id", Id, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    Index("ix_account_tokens_account_id", "account_id"),
)
