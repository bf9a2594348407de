"""Service settings: one immutable object, read from the environment once at the entry point.

Every setting has a default that runs the whole service in one process with no servers: an
SQLite database and the images in ``IMAGESHARK_DATA_DIR``, broadcast in-process. Production mode
is chosen by setting ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL``. The README's settings
table lists every variable; keep it in step with this class.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from limits import parse
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class Settings(BaseSettings):
    """All configuration of one ImageShark process (immutable).

    Build it with ``Settings()`` at the entry point (reads the environment) or with keyword
    arguments in tests; pass it down, never read the environment elsewhere.
    """

    model_config = SettingsConfigDict(env_prefix="IMAGESHARK_", frozen=True, extra="ignore")

    host: str = Field("127.0.0.1", description="Interface `imageshark serve` binds to.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port `imageshark serve` binds to.")
    data_dir: Path = Field(
        Path("data"), description="Folder for the embedded database and the image files."
    )
    database_url: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "IMAGESHARK_DATABASE_URL"),
        description="PostgreSQL URL (postgresql://user:pass@host/db); unset: SQLite in data_dir.",
    )
    database_pool_size: int = Field(10, ge=1, description="PostgreSQL connections per replica.")
    redis_url: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("REDIS_URL", "IMAGESHARK_REDIS_URL"),
        description="Redis URL for cross-replica broadcast; unset: in-process broadcast.",
    )
    redis_prefix: str = Field(
        "imageshark", description="Prefix of every Redis key and channel this service uses."
    )
    public_base_url: str | None = Field(
        None,
        description="Absolute base URL guests reach (used in join URLs and QR codes); "
        "unset: taken from each request's Host header.",
    )
    max_upload_bytes: int = Field(
        40 * MIB, ge=1, description="Largest accepted image file, in bytes."
    )
    max_image_pixels: int = Field(
        100_000_000, ge=1, description="Largest accepted image, in pixels (decompression bombs)."
    )
    display_max_px: int = Field(
        1600, ge=16, description="Longest side of the display rendition, in pixels."
    )
    thumb_max_px: int = Field(400, ge=16, description="Longest side of the thumbnail, in pixels.")
    rendition_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Processes that make renditions (default: the machine's cores).",
    )
    rendition_queue: int = Field(
        32, ge=1, description="Uploads that may wait for a rendition worker before 503."
    )
    rendition_room_queue: int = Field(
        16,
        ge=0,
        description="Uploads of one room that may wait for a rendition worker before that "
        "room gets 503 (other rooms still get in, up to the pool's queue).",
    )
    rendition_timeout_seconds: float = Field(
        20,
        gt=0,
        description="Longest one image may take in a rendition worker, in seconds; longer: "
        "the worker is stopped and the upload refused with 422 image_too_costly.",
    )
    max_decode_bytes: int = Field(
        320 * MIB,
        ge=1,
        description="Largest decoded image, in bytes: pixels x channels x bytes per stored "
        "sample (100 MP of 8-bit colour is 300 MB); above it 413 before decoding.",
    )
    room_ttl_hours: float = Field(
        24 * 30, gt=0, description="How long a new room accepts guests, in hours."
    )
    max_caption_chars: int = Field(500, ge=0, description="Longest caption, in characters.")
    max_uploads_per_guest: int | None = Field(
        200, ge=1, description="Default uploads one participant may make in a new room."
    )
    max_images_per_room: int | None = Field(
        10_000, ge=1, description="Default number of images a new room may hold."
    )
    upload_rate_limit: str = Field(
        "30/minute",
        description="Uploads per participant, in the `limits` notation (`N/second|minute|hour`).",
    )
    anonymous_upload_rate_limit: str = Field(
        "600/minute",
        description="Uploads without a participant (scripts) per client address; generous "
        "because a venue's guests often share one address behind its router.",
    )
    join_rate_limit: str = Field(
        "10/minute",
        description="Join attempts per client address (passcode guessing), `limits` notation.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Key that signs participant cookies and download links; unset: a random "
        "key made once and kept in the database (shared by every replica).",
    )

    max_name_chars: int = Field(60, ge=1, description="Longest display name, in characters.")
    ping_interval_seconds: float = Field(
        25,
        gt=0,
        description="Socket.IO heartbeat interval, in seconds (keep it below any "
        "proxy's idle timeout).",
    )
    ping_timeout_seconds: float = Field(
        20, gt=0, description="Seconds without a heartbeat answer before a client is dropped."
    )
    catch_up_seconds: float = Field(
        5,
        gt=0,
        description="With Redis: how often each replica checks the event log for "
        "events the bus lost, in seconds.",
    )
    presence_ttl_seconds: float = Field(
        15,
        gt=0,
        description="With Redis: seconds after which a replica that stopped without "
        "cleaning up (killed, lost node) no longer counts toward a room's presence.",
    )
    replay_limit: int = Field(
        500,
        ge=1,
        description="Missed events replayed to a reconnecting client one by one; "
        "a client further behind gets a snapshot of the room instead.",
    )
    migrate_on_start: bool = Field(
        True,
        description="Apply database migrations when the server starts (turn off where a "
        "separate `imageshark migrate` step runs once per deploy).",
    )
    log_level: str = Field("INFO", description="Logging level.")
    log_format: Literal["json", "console"] = Field(
        "console", description="`json` for one JSON object per line (production), or `console`."
    )
    static_dir: Path = Field(
        Path(__file__).resolve().parent.parent / "static",
        description="Folder of the browser assets (built by `npm run build`).",
    )

    @field_validator(
        "upload_rate_limit", "anonymous_upload_rate_limit", "join_rate_limit", mode="after"
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        """Refuse rate limits the `limits` library cannot parse, at start-up."""
        parse(value)
        return value

    @field_validator("database_url", mode="after")
    @classmethod
    def _async_driver(cls, value: SecretStr | None) -> SecretStr | None:
        """Accept plain ``postgres://`` URLs and select the asyncpg driver for them."""
        if value is None:
            return None
        url = value.get_secret_value()
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                url = "postgresql+asyncpg://" + url[len(prefix) :]
        return SecretStr(url)

    @property
    def sqlalchemy_url(self) -> str:
        """The SQLAlchemy URL of the database: PostgreSQL (asyncpg) or SQLite (aiosqlite)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{(self.data_dir / 'imageshark.db').resolve()}"

    @property
    def embedded(self) -> bool:
        """True when running on the embedded SQLite database."""
        return self.database_url is None
