"""Service settings: one immutable object, read from the environment once at the entry point.

Every setting has a default that runs the whole service in one process with no servers: an
SQLite database and the images in ``IMAGESHARK_DATA_DIR``, broadcast in-process. Production mode
is chosen by setting ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL``. The README's settings
table lists every variable; keep it in step with this class.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from limits import parse
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from web.origins import normalise_origin

MIB = 1024 * 1024


class Settings(BaseSettings):
    """All configuration of one ImageShark process (immutable).

    Build it with ``Settings()`` at the entry point (reads the environment) or with keyword
    arguments in tests; pass it down, never read the environment elsewhere.
    """

    model_config = SettingsConfigDict(env_prefix="IMAGESHARK_", frozen=True, extra="ignore")

    host: str = Field(
        "0.0.0.0",
        description="Interface `imageshark serve` binds to (default: every interface, so "
        "guests' phones on the network reach it).",
    )
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
    rendition_queue: Literal["inline", "redis"] = Field(
        "inline",
        description="Where direct uploads are rendered: `inline` in the replica's own "
        "process pool, or `redis`: the replicas enqueue a job on Redis and `imageshark worker` "
        "processes render it (needs REDIS_URL and an object store).",
    )
    rendition_queue_limit: int = Field(
        32, ge=1, description="Uploads that may wait for a rendition worker before 503."
    )
    worker_port: int = Field(
        8001,
        ge=0,
        le=65535,
        description="TCP port of `imageshark worker`'s health and metrics server.",
    )
    worker_heartbeat_seconds: int = Field(
        10,
        ge=1,
        description="With the Redis queue: a job whose worker sent no heartbeat for this "
        "long (it died) is given to another worker, in seconds.",
    )
    worker_drain_seconds: int = Field(
        45,
        ge=0,
        description="After SIGTERM, how long `imageshark worker` lets its running jobs "
        "finish, in seconds; what is still running then goes back to the queue for another "
        "worker at once. Keep it below the pod's termination grace period.",
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
    media_max_age_seconds: int = Field(
        300,
        ge=0,
        description="How long browsers may reuse a rendition (private cache), in seconds; "
        "bounds how long a deleted photo stays visible where it was already seen.",
    )
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
    metrics_token: SecretStr | None = Field(
        None,
        description="When set, GET /metrics needs `Authorization: Bearer <token>`; unset: open.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Key that signs participant cookies and download links; unset: a random "
        "key made once and kept in the database (shared by every replica).",
    )

    max_name_chars: int = Field(60, ge=1, description="Longest display name, in characters.")
    ping_interval_seconds: float = Field(
        25,
        ge=1,
        description="Socket.IO heartbeat interval, in whole seconds (keep it below any "
        "proxy's idle timeout).",
    )
    ping_timeout_seconds: float = Field(
        20, gt=0, description="Seconds without a heartbeat answer before a client is dropped."
    )
    connect_timeout_seconds: float = Field(
        10,
        gt=0,
        description="Seconds a live connection may stay open without joining a room "
        "(completing the Socket.IO handshake) before it is closed.",
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
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Origins besides the service's own whose browser pages may connect to the "
        "live side and send changes, comma-separated (e.g. `https://photos.example.org`).",
    )
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        ("127.0.0.1", "::1"),
        description="Addresses or CIDR ranges of the reverse proxies in front of the service, "
        "comma-separated: their X-Forwarded-For/-Proto are believed, and the client address is "
        "the rightmost X-Forwarded-For entry that is not one of them. Empty: none.",
    )
    log_level: str = Field("INFO", description="Logging level.")
    log_format: Literal["json", "console"] = Field(
        "console", description="`json` for one JSON object per line (production), or `console`."
    )
    static_dir: Path = Field(
        Path(__file__).resolve().parent.parent / "static",
        description="Folder of the browser assets (built by `npm run build`).",
    )

    # Connection and abuse limits (hardening): see the README's "Behind a proxy".
    header_timeout_seconds: float | None = Field(
        10,
        gt=0,
        description="Seconds a client may take to send a request's headers before the "
        "connection is closed with 408 (slow-request floods).",
    )
    upload_idle_timeout_seconds: float = Field(
        30,
        gt=0,
        description="Longest pause between two chunks of an upload's body, in seconds, "
        "before the upload is refused with 408 `upload_timeout`.",
    )
    max_connections: int | None = Field(
        10_000,
        ge=1,
        description="Open connections (HTTP and WebSocket) per replica beyond which new "
        "requests get 503; fits a 2000-guest room with room to spare.",
    )
    max_concurrent_uploads_per_address: int = Field(
        32,
        ge=1,
        description="Uploads one client address may have in progress at once on a replica; "
        "more get 429 with Retry-After (generous: guests often share a venue's address).",
    )
    room_create_rate_limit: str = Field(
        "20/hour", description="Rooms one client address may create, `limits` notation."
    )
    open_join_rate_limit: str = Field(
        "120/minute",
        description="New participants one client address may register in a room without "
        "a passcode, `limits` notation (each join starts a fresh per-guest quota).",
    )
    # Host accounts (web/accounts/): docs/API.md "Host accounts", and
    # docs/decisions/0026-password-hashing.md for the throttle defaults.
    signup: Literal["open", "invite", "closed"] = Field(
        "open",
        description="Who may create a host account: `open` anyone; `invite` only with a "
        "single-use invite an admin issues (`POST /api/admin/signup-invites`); `closed` nobody.",
    )
    session_days: float = Field(
        30,
        gt=0,
        description="Days a host's session lasts after its last use (sliding), in days.",
    )
    cohost_invite_days: float = Field(
        7,
        gt=0,
        description="Days a co-host invite link stays valid after the owner makes it, in days.",
    )
    sign_in_account_rate_limit: str = Field(
        "20/hour",
        description="Sign-in attempts per e-mail address (known or not), `limits` notation.",
    )
    sign_in_address_rate_limit: str = Field(
        "30/minute",
        description="Sign-in attempts per client address, `limits` notation.",
    )
    sign_up_rate_limit: str = Field(
        "10/hour", description="Sign-ups per client address, `limits` notation."
    )
    verification_hours: float = Field(
        48, gt=0, description="Hours an address verification link works, in hours."
    )
    password_reset_minutes: float = Field(
        60, gt=0, description="Minutes a password reset link works, in minutes."
    )
    verification_resend_rate_limit: str = Field(
        "5/hour", description="Verification mails an account may ask for, `limits` notation."
    )
    password_reset_address_rate_limit: str = Field(
        "10/hour", description="Password reset requests per client address, `limits` notation."
    )
    password_reset_account_rate_limit: str = Field(
        "5/hour",
        description="Password reset requests per e-mail address (known or not), `limits` notation.",
    )
    pending_digest_minutes: float = Field(
        15,
        gt=0,
        description="Least time between two mails to a room's owner about photos waiting for "
        "approval, in minutes.",
    )
    password_hashes_at_once: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Password hashes (argon2id, 64 MiB each) one replica computes at once; "
        "more wait (default: the machine's cores).",
    )
    min_free_disk_bytes: int = Field(
        512 * MIB,
        ge=0,
        description="Free space the data folder's disk keeps: uploads that would leave less "
        "are refused with 507 `insufficient_storage`, in bytes.",
    )

    # Where the image files live: see web/object_media.py and the README's "Object storage".
    storage_url: str | None = Field(
        None,
        description="Where image files are kept: unset or a folder path: on local disk "
        "(unset: `data_dir`); `s3://bucket[/prefix]` (any S3-compatible store, configured by "
        "the `AWS_*` variables), `gs://bucket[/prefix]` or `az://container[/prefix]`.",
    )
    media_base_url: str | None = Field(
        None,
        description="With object storage: a public base URL (CDN or public bucket) in front of "
        "the bucket's prefix; renditions redirect to `<base>/<key>/<name>` instead of to a "
        "presigned GET.",
    )
    media_url_seconds: int = Field(
        3600,
        ge=60,
        le=7 * 24 * 3600,
        description="With object storage: how long a presigned GET of a rendition, an "
        "original or a full-size download stays valid, in seconds (S3 allows up to 7 days).",
    )
    storage_retry_wait_seconds: float = Field(
        0.1,
        gt=0,
        le=5,
        description="With object storage: the wait before the first retry of a failed store "
        "request, in seconds; each further retry waits up to twice the last (with jitter).",
    )
    aws_access_key_id: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("AWS_ACCESS_KEY_ID", "IMAGESHARK_AWS_ACCESS_KEY_ID"),
        description="With `s3://`: the access key id (unset: the library's credential chain, "
        "e.g. an IAM role for service accounts).",
    )
    aws_secret_access_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("AWS_SECRET_ACCESS_KEY", "IMAGESHARK_AWS_SECRET_ACCESS_KEY"),
        description="With `s3://`: the secret access key.",
    )
    aws_region: str | None = Field(
        None,
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION", "IMAGESHARK_AWS_REGION"),
        description="With `s3://`: the bucket's region (unset: `us-east-1`).",
    )
    aws_endpoint_url: str | None = Field(
        None,
        validation_alias=AliasChoices("AWS_ENDPOINT_URL", "IMAGESHARK_AWS_ENDPOINT_URL"),
        description="With `s3://`: the endpoint of an S3-compatible store (MinIO, Ceph, R2, "
        "moto), `http://` allowed; unset: Amazon S3.",
    )
    azure_storage_account_name: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "AZURE_STORAGE_ACCOUNT_NAME", "IMAGESHARK_AZURE_STORAGE_ACCOUNT_NAME"
        ),
        description="With `az://`: the storage account's name (unset: the library reads it "
        "from its own variables).",
    )
    azure_storage_account_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(
            "AZURE_STORAGE_ACCOUNT_KEY", "IMAGESHARK_AZURE_STORAGE_ACCOUNT_KEY"
        ),
        description="With `az://`: the account's access key, which presigned URLs (SAS) are "
        "signed with (unset: a managed identity or the library's other credentials).",
    )
    azure_storage_endpoint: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "AZURE_STORAGE_ENDPOINT", "IMAGESHARK_AZURE_STORAGE_ENDPOINT"
        ),
        description="With `az://`: the account's blob endpoint, e.g. an emulator's "
        "`http://127.0.0.1:10000/devstoreaccount1`, `http://` allowed; unset: "
        "`https://<account>.blob.core.windows.net`.",
    )

    # Organisation sign-on (OpenID Connect): see web/accounts/oidc.py and the README's
    # "Organisation sign-on". All three of issuer, client id and secret, or none.
    oidc_issuer: str | None = Field(
        None,
        description="Issuer URL of the organisation's OpenID provider (its discovery document "
        "is `<issuer>/.well-known/openid-configuration`); unset: no organisation sign-on.",
    )
    oidc_client_id: str | None = Field(
        None, description="With `IMAGESHARK_OIDC_ISSUER`: this service's client id there."
    )
    oidc_client_secret: SecretStr | None = Field(
        None, description="With `IMAGESHARK_OIDC_ISSUER`: this service's client secret there."
    )
    oidc_scopes: str = Field(
        "openid email profile",
        description="Scopes asked for at sign-on, space-separated; must include `openid` and "
        "`email` (accounts are linked by the verified e-mail).",
    )
    oidc_name: str | None = Field(
        None,
        description="Label of the sign-on button, e.g. `Sign in with Acme`; unset: "
        "`Sign in with your organisation`.",
    )
    # Mail (web/mail/): see the README's "Mail".
    smtp_url: SecretStr | None = Field(
        None,
        description="SMTP server the service sends mail through: `smtp://[user:pass@]host"
        "[:port]` (plain, port 25, upgraded with STARTTLS when the server offers it), "
        "`smtp+starttls://` (STARTTLS required, port 587) or `smtps://` (implicit TLS, port "
        "465); user and password percent-encoded. Unset: no mail, and what needs it answers "
        "503 `mail_unavailable`.",
    )
    mail_from: str | None = Field(
        None,
        description="The From of every mail, e.g. `ImageShark <photos@example.org>`; unset: "
        "`ImageShark <noreply@HOST>` with the host of `public_base_url` (else of the SMTP "
        "server).",
    )

    @field_validator(
        "upload_rate_limit",
        "anonymous_upload_rate_limit",
        "join_rate_limit",
        "room_create_rate_limit",
        "open_join_rate_limit",
        "sign_in_account_rate_limit",
        "sign_in_address_rate_limit",
        "sign_up_rate_limit",
        "verification_resend_rate_limit",
        "password_reset_address_rate_limit",
        "password_reset_account_rate_limit",
        mode="after",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        """Refuse rate limits the `limits` library cannot parse, at start-up."""
        parse(value)
        return value

    @field_validator("allowed_origins", "trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """Read a list setting from the environment as comma-separated text."""
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("allowed_origins", mode="after")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Refuse entries that are not origins (``scheme://host[:port]``), at start-up."""
        clean = []
        for origin in value:
            normal = normalise_origin(origin)
            if normal is None or urlsplit(origin.strip()).path not in ("", "/"):
                raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
            clean.append(normal)
        return tuple(clean)

    @field_validator("trusted_proxies", mode="after")
    @classmethod
    def _proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Refuse entries that are not IP addresses or networks, and ``*``: trusting every
        peer lets each client choose its own address (the leftmost X-Forwarded-For entry)."""
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"not an IP address or CIDR range: {entry!r} (list the proxies' "
                    "addresses; `*` would let clients forge their address)"
                ) from None
        return value

    @field_validator("ping_interval_seconds", mode="after")
    @classmethod
    def _whole_seconds(cls, value: float) -> float:
        """Refuse a fractional ping interval: python-engineio advertises it to clients in
        whole seconds (1.5 s as 1000 ms), and clients would time the heartbeat by that."""
        if not value.is_integer():
            raise ValueError(f"must be a whole number of seconds, not {value}")
        return value

    @field_validator("storage_url", mode="after")
    @classmethod
    def _storage_url(cls, value: str | None) -> str | None:
        """Refuse storage URLs of unknown schemes, without a bucket, or with credentials in
        them, at start-up (see :func:`parse_storage_url`)."""
        if value is not None and value.strip():
            parse_storage_url(value)
            return value.strip()
        return None

    @field_validator("media_base_url", "aws_endpoint_url", "azure_storage_endpoint", mode="after")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """Refuse base URLs that are not absolute ``http(s)://host[/path]`` without a query."""
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError(f"not an absolute http(s) URL without a query: {value!r}")
        return value.strip().rstrip("/")

    @field_validator("rendition_queue", mode="before")
    @classmethod
    def _queue_kind(cls, value: Any) -> Any:
        """Name the renamed setting when given the pool's queue length (a number)."""
        if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
            raise ValueError(
                "IMAGESHARK_RENDITION_QUEUE is now `inline` or `redis`; the length of the "
                "rendition pool's queue is IMAGESHARK_RENDITION_QUEUE_LIMIT"
            )
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("signup", mode="before")
    @classmethod
    def _signup_kind(cls, value: Any) -> Any:
        """Read ``IMAGESHARK_SIGNUP`` in any case, around spaces."""
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _redis_queue_needs_redis_and_object_storage(self) -> Settings:
        """Refuse the Redis queue without Redis, or with local storage (a worker could not
        read the bytes a replica received)."""
        if self.rendition_queue == "redis" and (
            self.redis_url is None or self.storage.folder is not None
        ):
            raise ValueError(
                "IMAGESHARK_RENDITION_QUEUE=redis needs REDIS_URL and object storage "
                "(IMAGESHARK_STORAGE_URL=s3://, gs:// or az://)"
            )
        return self

    @model_validator(mode="after")
    def _media_base_url_needs_object_storage(self) -> Settings:
        """Refuse a media base URL with local storage: nothing would serve it."""
        if self.media_base_url is not None and self.storage.folder is not None:
            raise ValueError(
                "IMAGESHARK_MEDIA_BASE_URL needs object storage (IMAGESHARK_STORAGE_URL="
                "s3://, gs:// or az://): with a local folder the service serves the files"
            )
        return self

    @field_validator("oidc_issuer", "oidc_client_id", "oidc_name", mode="after")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        """Read an empty variable (a chart's unset value) as unset."""
        return value.strip() if value is not None and value.strip() else None

    @field_validator("oidc_issuer", mode="after")
    @classmethod
    def _issuer_url(cls, value: str | None) -> str | None:
        """Refuse an issuer that is not an ``https://`` URL without query or fragment
        (``http://`` only on a loopback address, for a provider on this machine)."""
        if value is None:
            return None
        parts = urlsplit(value)
        loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
        if (
            not parts.hostname
            or parts.query
            or parts.fragment
            or not (parts.scheme == "https" or (parts.scheme == "http" and loopback))
        ):
            raise ValueError(
                f"IMAGESHARK_OIDC_ISSUER: not an https:// URL without a query: {value!r}"
            )
        return value

    @field_validator("oidc_scopes", mode="after")
    @classmethod
    def _oidc_scopes(cls, value: str) -> str:
        """Refuse scopes without ``openid`` (no ID token) or ``email`` (nothing to link by)."""
        scopes = value.split()
        missing = [scope for scope in ("openid", "email") if scope not in scopes]
        if missing:
            raise ValueError(f"IMAGESHARK_OIDC_SCOPES must include {' and '.join(missing)}")
        return " ".join(scopes)

    @model_validator(mode="after")
    def _oidc_all_or_nothing(self) -> Settings:
        """Refuse a partial sign-on configuration, naming what is missing."""
        given = {
            "IMAGESHARK_OIDC_ISSUER": self.oidc_issuer is not None,
            "IMAGESHARK_OIDC_CLIENT_ID": self.oidc_client_id is not None,
            "IMAGESHARK_OIDC_CLIENT_SECRET": self.oidc_client_secret is not None
            and bool(self.oidc_client_secret.get_secret_value()),
        }
        if any(given.values()) and not all(given.values()):
            missing = ", ".join(name for name, present in given.items() if not present)
            raise ValueError(
                f"organisation sign-on needs IMAGESHARK_OIDC_ISSUER, IMAGESHARK_OIDC_CLIENT_ID "
                f"and IMAGESHARK_OIDC_CLIENT_SECRET together; missing: {missing}"
            )
        if self.oidc_name is not None and self.oidc_issuer is None:
            raise ValueError("IMAGESHARK_OIDC_NAME needs IMAGESHARK_OIDC_ISSUER")
        return self

    @field_validator("smtp_url", mode="after")
    @classmethod
    def _smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        """Refuse SMTP URLs of unknown schemes or without a host, at start-up (see
        :func:`parse_smtp_url`); an empty value is no mail."""
        if value is None or not value.get_secret_value().strip():
            return None
        parse_smtp_url(value.get_secret_value())
        return SecretStr(value.get_secret_value().strip())

    @field_validator("mail_from", mode="after")
    @classmethod
    def _mail_from(cls, value: str | None) -> str | None:
        """Refuse a From that holds no address (``Name <user@host>`` or ``user@host``)."""
        if value is None or not value.strip():
            return None
        _, address = parseaddr(value.strip())
        if "@" not in address:
            raise ValueError(f"not a mail address (Name <user@host>): {value!r}")
        return value.strip()

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

    @property
    def oidc_enabled(self) -> bool:
        """True when organisation sign-on is configured (issuer, client id and secret)."""
        return self.oidc_issuer is not None

    @property
    def oidc_button_label(self) -> str:
        """The sign-on button's label: ``IMAGESHARK_OIDC_NAME`` or a generic one."""
        return self.oidc_name or "Sign in with your organisation"

    @property
    def smtp(self) -> SmtpServer | None:
        """The SMTP server mail goes through, or None when no mail is configured."""
        if self.smtp_url is None:
            return None
        return parse_smtp_url(self.smtp_url.get_secret_value())

    @property
    def mail_sender(self) -> str:
        """The From of every mail: ``mail_from``, else ``ImageShark <noreply@HOST>`` with the
        host of ``public_base_url``, else of the SMTP server, else ``localhost``."""
        if self.mail_from is not None:
            return self.mail_from
        host = urlsplit(self.public_base_url).hostname if self.public_base_url else None
        if host is None and self.smtp is not None:
            host = self.smtp.host
        return formataddr(("ImageShark", f"noreply@{host or 'localhost'}"))

    @property
    def storage(self) -> StorageLocation:
        """Where the image files live: local (a folder) or an object store."""
        if self.storage_url is None:
            return StorageLocation("file", "", "", self.data_dir)
        return parse_storage_url(self.storage_url)


OBJECT_SCHEMES = {
    "s3": "Amazon S3 or an S3-compatible store",
    "gs": "Google Cloud Storage",
    "az": "Azure Blob Storage",
}
"""The object-store URL schemes :data:`Settings.storage_url` takes, and what each names."""


@dataclass(frozen=True, slots=True)
class StorageLocation:
    """A parsed :data:`Settings.storage_url`.

    :ivar scheme: ``"file"`` (a local folder), ``"s3"``, ``"gs"`` or ``"az"``.
    :ivar bucket: the bucket (Azure: container) of an object store; ``""`` for a folder.
    :ivar prefix: the key prefix inside it, without slashes at either end (may be ``""``).
    :ivar folder: the local folder (``scheme == "file"``), else None.
    """

    scheme: str
    bucket: str
    prefix: str
    folder: Path | None

    @property
    def url(self) -> str:
        """The object store's URL, ``<scheme>://<bucket>[/<prefix>]`` (not for a folder)."""
        return f"{self.scheme}://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")


def parse_storage_url(value: str) -> StorageLocation:
    """Parse a storage URL: a folder path (absolute, relative, or ``file://``) or
    ``s3://bucket[/prefix]``, ``gs://bucket[/prefix]``, ``az://container[/prefix]``.

    :raises ValueError: an unknown scheme, no bucket, credentials or a query in the URL, or
        a prefix with empty segments (``a//b``).
    """
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme in ("", "file") or len(parts.scheme) == 1:  # "C:\..." is a path
        path = parts.path if parts.scheme == "file" else text
        if not path:
            raise ValueError("storage URL: an empty path")
        return StorageLocation("file", "", "", Path(path))
    if parts.scheme not in OBJECT_SCHEMES:
        raise ValueError(
            f"storage URL: unknown scheme {parts.scheme!r} (use a folder path, "
            + ", ".join(f"{scheme}://" for scheme in OBJECT_SCHEMES)
            + ")"
        )
    if "@" in parts.netloc or parts.password is not None:
        raise ValueError(
            "storage URL: credentials do not go in the URL; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or the GCS/Azure variables, see the README)"
        )
    if parts.query or parts.fragment:
        raise ValueError("storage URL: no query or fragment (configure through variables)")
    if not parts.hostname:
        raise ValueError(f"storage URL: no bucket in {text!r} (e.g. {parts.scheme}://photos)")
    prefix = parts.path.strip("/")
    if prefix and any(not segment for segment in prefix.split("/")):
        raise ValueError(f"storage URL: empty segment in the prefix {prefix!r}")
    return StorageLocation(parts.scheme, parts.netloc, prefix, None)


SMTP_SCHEMES = {
    "smtp": ("opportunistic", 25),
    "smtp+starttls": ("starttls", 587),
    "smtps": ("implicit", 465),
}
"""The schemes :data:`Settings.smtp_url` takes: each one's TLS mode and default port."""


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """A parsed :data:`Settings.smtp_url`.

    :ivar tls: ``"opportunistic"`` (STARTTLS when the server offers it, else plain text),
        ``"starttls"`` (STARTTLS required) or ``"implicit"`` (TLS from the first byte).
    :ivar username: for AUTH, or None (no AUTH); ``password`` with it.
    :ivar verify: whether the server's certificate is checked (``?verify=false`` turns it
        off, for a relay on a private network with a self-signed certificate).
    """

    host: str
    port: int
    tls: Literal["opportunistic", "starttls", "implicit"]
    username: str | None
    password: str | None = field(repr=False)
    verify: bool = True


def parse_smtp_url(value: str) -> SmtpServer:
    """Parse ``smtp://``, ``smtp+starttls://`` or ``smtps://[user[:password]@]host[:port]``
    (user and password percent-encoded), with an optional ``?verify=false``.

    :raises ValueError: an unknown scheme, no host, a bad port or an unknown option; the
        message never holds the password.
    """
    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    if scheme not in SMTP_SCHEMES:
        raise ValueError(
            f"SMTP URL: unknown scheme {parts.scheme!r} (use "
            + ", ".join(f"{name}://" for name in SMTP_SCHEMES)
            + ")"
        )
    tls, default_port = SMTP_SCHEMES[scheme]
    try:
        port = parts.port or default_port
    except ValueError:
        raise ValueError("SMTP URL: the port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("SMTP URL: no host (e.g. smtp://mail.example.org:587)")
    options = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(options) - {"verify"}
    if unknown or parts.path not in ("", "/") or parts.fragment:
        raise ValueError("SMTP URL: the only option is ?verify=false, and no path")
    verify_values = options.get("verify", ["true"])
    if verify_values[-1].lower() not in ("true", "false", "1", "0"):
        raise ValueError("SMTP URL: verify is true or false")
    return SmtpServer(
        host=parts.hostname,
        port=port,
        tls=tls,  # type: ignore[arg-type]  # one of SMTP_SCHEMES' modes
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        verify=verify_values[-1].lower() in ("true", "1"),
    )
