"""The ``imageshark`` command: ``serve`` runs the service, ``worker`` renders queued direct
uploads, ``migrate`` updates the schema, ``create-admin`` makes an instance admin."""

from __future__ import annotations

import gc
import getpass
import logging
import os
import sys

import click
import uvicorn

from web.connections import http_protocol, raise_open_file_limit
from web.logs import configure_logging
from web.settings import Settings

logger = logging.getLogger(__name__)

BODY_TIMEOUT_MARGIN_SECONDS = 5


@click.group()
def main() -> None:
    """ImageShark: live photo sharing for events. Configured through environment variables
    (see the README's settings table)."""


@main.command()
@click.option("--host", default=None, help="Interface to bind (default: IMAGESHARK_HOST).")
@click.option("--port", type=int, default=None, help="TCP port (default: IMAGESHARK_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Run the service in this process (HTTP and Socket.IO on one port)."""
    from web.app import GC_THRESHOLDS, create_app

    settings = Settings()
    bind_host = host or settings.host
    bind_port = settings.port if port is None else port
    # The bind host decides whether join URLs may use the LAN address (web/rooms/views.py).
    settings = settings.model_copy(update={"host": bind_host, "port": bind_port})
    configure_logging(settings)
    click.echo(guest_url_message(settings))
    # The live path's garbage dies by reference counting; the default threshold's collections
    # stalled fan-outs to large rooms (docs/decisions/0003-gc-threshold-for-the-live-path.md).
    # The app's lifespan applies them too (any server); here they also cover start-up.
    gc.set_threshold(*GC_THRESHOLDS)
    files_before, files = raise_open_file_limit()
    if files_before != files:
        logger.info("open-file limit raised from %d to %d", files_before, files)
    if settings.max_connections is not None and files < settings.max_connections + 256:
        logger.warning(
            "the open-file limit (%d) is below IMAGESHARK_MAX_CONNECTIONS (%d) plus headroom: "
            "a connection flood exhausts descriptors before the cap answers 503",
            files,
            settings.max_connections,
        )
    # A deadline for each request's headers (slow-request floods); uvicorn has none.
    # A backstop a little after the uploads' own idle timeout (their JSON 408 comes first).
    http = http_protocol(
        settings.header_timeout_seconds,
        settings.upload_idle_timeout_seconds + BODY_TIMEOUT_MARGIN_SECONDS,
    )
    uvicorn.run(
        create_app(settings, http_deadlines=not isinstance(http, str)),
        host=bind_host,
        port=bind_port,
        # Compression would cost more than the rest of a delivery, for payloads of a few hundred
        # bytes (docs/decisions/0004-websocket-without-compression.md).
        ws_per_message_deflate=False,
        # No WebSocket-level keepalive pings: Engine.IO's heartbeat already keeps connections
        # and proxies alive (docs/decisions/0005-no-uvicorn-websocket-pings.md).
        ws_ping_interval=None,
        # The protocol whose connections room broadcasts can write to directly
        # (realtime/fanout.py); the others work too, through each socket's queue.
        ws="websockets-sansio",
        http=http,
        limit_concurrency=settings.max_connections,
        # The app applies X-Forwarded-* itself, trusting IMAGESHARK_TRUSTED_PROXIES (web/app.py);
        # uvicorn's own layer (FORWARDED_ALLOW_IPS) would rewrite the peer before it.
        proxy_headers=False,
        lifespan="on",
        log_config=None,
        timeout_graceful_shutdown=30,
    )


def guest_url_message(settings: Settings) -> str:
    """The lines ``serve`` prints first: where the host opens the service and the address
    guests' phones use (the LAN address when bound to every interface), or what to change."""
    from web.rooms.views import WILDCARD_HOSTS, LanAddress

    port = settings.port
    if settings.public_base_url:
        guests = settings.public_base_url.rstrip("/")
        return f"ImageShark: open {guests} ; guests join at {guests}/j/<room code>"
    local = f"http://127.0.0.1:{port}"
    if settings.host in WILDCARD_HOSTS:
        lan = LanAddress().get()
        if lan is not None:
            return (
                f"ImageShark: open {local} (or http://{lan}:{port}); "
                f"guests on this network join at http://{lan}:{port}/j/<room code>"
            )
        return (
            f"ImageShark: open {local}; no network address found: connect this machine to "
            "the guests' network or set IMAGESHARK_PUBLIC_BASE_URL"
        )
    return (
        f"ImageShark: open http://{settings.host}:{port}; bound to {settings.host} only: "
        "phones reach it only if that address is on their network "
        "(IMAGESHARK_HOST=0.0.0.0 binds every interface)"
    )


@main.command()
@click.option("--host", default="0.0.0.0", help="Interface of the health server.")
@click.option(
    "--port", type=int, default=None, help="Health server's port (default: IMAGESHARK_WORKER_PORT)."
)
def worker(host: str, port: int | None) -> None:
    """Render the direct uploads the replicas enqueue (IMAGESHARK_RENDITION_QUEUE=redis);
    serve /livez, /readyz and /metrics on the worker port."""
    import asyncio

    from web.worker import RenditionWorker, build_worker

    settings = Settings()
    configure_logging(settings)
    try:
        parts = build_worker(settings)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    consumer = RenditionWorker(parts, host, settings.worker_port if port is None else port)
    asyncio.run(consumer.run())


@main.command()
def migrate() -> None:
    """Apply database migrations up to the newest (safe to run from several replicas)."""
    from web.migrate import upgrade

    settings = Settings()
    configure_logging(settings)
    upgrade(settings)
    click.echo("database schema is up to date")


ADMIN_PASSWORD_VARIABLE = "IMAGESHARK_ADMIN_PASSWORD"
MIN_ADMIN_PASSWORD_CHARS = 12
"""An admin's password is longer than a host's (8, NIST SP 800-63B's floor): it controls
every room and account."""
MIN_DISTINCT_CHARS = 5
"""Fewer different characters than this (``aaaaaaaaaaaa``, ``121212121212``) is refused."""
EXIT_PASSWORD_REFUSED = 1
EXIT_USAGE = 2
EXIT_SCHEMA_OUTDATED = 3


def admin_password_problem(password: str, email: str) -> str | None:
    """Why ``password`` may not be an admin's, or None when it may.

    Refused: fewer than :data:`MIN_ADMIN_PASSWORD_CHARS` characters, more than
    :data:`~web.accounts.schemas.MAX_PASSWORD_CHARS`, fewer than :data:`MIN_DISTINCT_CHARS`
    different characters, or containing the address's local part (NIST SP 800-63B 5.1.1.2:
    refuse repetitive and context-specific words).
    """
    from web.accounts.schemas import MAX_PASSWORD_CHARS

    if len(password) < MIN_ADMIN_PASSWORD_CHARS:
        return f"the password is too short: use at least {MIN_ADMIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"the password is too long: use at most {MAX_PASSWORD_CHARS} characters"
    if len(set(password)) < MIN_DISTINCT_CHARS:
        return "the password is too repetitive: use more different characters"
    local = email.rpartition("@")[0].casefold()
    if len(local) >= 3 and local in password.casefold():
        return "the password contains the e-mail address: choose one unrelated to it"
    return None


def stdin_is_terminal() -> bool:
    """Whether the password can be typed (standard input is a terminal)."""
    return sys.stdin.isatty()


def _read_admin_password() -> str:
    """The password from :data:`ADMIN_PASSWORD_VARIABLE`, or typed twice on a terminal."""
    password = os.environ.get(ADMIN_PASSWORD_VARIABLE)
    if password:
        return password
    if not stdin_is_terminal():
        click.echo(
            f"error: no password: set {ADMIN_PASSWORD_VARIABLE} or run on a terminal",
            err=True,
        )
        sys.exit(EXIT_USAGE)
    first = getpass.getpass("Password for the admin: ")
    if getpass.getpass("Same password again: ") != first:
        click.echo("error: the two passwords differ", err=True)
        sys.exit(EXIT_PASSWORD_REFUSED)
    return first


@main.command("create-admin")
@click.argument("email")
def create_admin(email: str) -> None:
    """Create the account EMAIL as an instance admin, or make an existing account one (its
    password then stays as it is).

    The password comes from IMAGESHARK_ADMIN_PASSWORD or is typed twice on a terminal, never
    from the command line. The schema is migrated first when IMAGESHARK_MIGRATE_ON_START is
    on; otherwise it must already be up to date (`imageshark migrate`).

    Exit codes: 0 created or promoted; 1 password refused (weak, short, or typed differently);
    2 usage (not an e-mail address, no password source); 3 schema not up to date.
    """
    import asyncio

    from web.accounts.schemas import normalise_email

    settings = Settings()
    configure_logging(settings)
    address = normalise_email(email)
    if address is None:
        click.echo(f"error: {email!r} is not an e-mail address (name@example.org)", err=True)
        sys.exit(EXIT_USAGE)
    password = _read_admin_password()
    problem = admin_password_problem(password, address)
    if problem is not None:
        click.echo(f"error: {problem}", err=True)
        sys.exit(EXIT_PASSWORD_REFUSED)
    if settings.migrate_on_start:
        from web.migrate import upgrade

        upgrade(settings)
    created = asyncio.run(_create_admin(settings, address, password))
    if created is None:
        click.echo(
            "error: the database schema is not up to date: run `imageshark migrate` first",
            err=True,
        )
        sys.exit(EXIT_SCHEMA_OUTDATED)
    click.echo(f"{address} is {'now an admin (new account)' if created else 'now an admin'}")


async def _create_admin(settings: Settings, email: str, password: str) -> bool | None:
    """Create or promote the admin; whether it was created, None when the schema is not at
    the newest migration (nothing is done then)."""
    from web.accounts.passwords import Passwords
    from web.accounts.repository import AccountRepository
    from web.admin.repository import AdminRepository
    from web.admin.service import create_admin as create_or_promote
    from web.database import Database
    from web.migrate import head_revision, schema_revision
    from web.rooms.service import utc_now

    database = Database(settings)
    try:
        if await schema_revision(database) != head_revision():
            return None
        _, created = await create_or_promote(
            AccountRepository(database),
            AdminRepository(database),
            Passwords(1),
            email,
            password,
            utc_now(),
        )
        return created
    finally:
        await database.close()


if __name__ == "__main__":
    main()
