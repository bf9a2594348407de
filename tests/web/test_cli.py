"""`imageshark serve`: the uvicorn settings the live path depends on, and the part of them the
app applies itself, for any server (`uvicorn --factory web.app:create_app`)."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from click.testing import CliRunner
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tests.conftest import SettingsFactory
from web import cli
from web.accounts.repository import Account, AccountRepository
from web.app import GC_THRESHOLDS, create_app
from web.database import Database
from web.migrate import upgrade
from web.settings import Settings


def test_serve_runs_uvicorn_without_compression_or_websocket_pings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    calls: list[dict[str, Any]] = []
    thresholds: list[tuple[int, ...]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    # Not applied to the test process: the collector's thresholds and the logging setup.
    monkeypatch.setattr(gc, "set_threshold", lambda *values: thresholds.append(values))
    monkeypatch.setattr(cli, "configure_logging", lambda settings: None)
    monkeypatch.setenv("IMAGESHARK_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(cli.main, ["serve", "--host", "127.0.0.1", "--port", "8123"])
    assert result.exit_code == 0, result.output
    (options,) = calls
    assert (options["host"], options["port"]) == ("127.0.0.1", 8123)
    assert options["ws"] == "websockets-sansio"
    assert options["ws_per_message_deflate"] is False
    # Engine.IO's heartbeat is the only keepalive: no second ping per client from uvicorn.
    assert options["ws_ping_interval"] is None
    assert thresholds == [(50_000, 10, 10)]
    # A request-header deadline (web/connections.py) and the connection cap from the settings.
    assert issubclass(options["http"], HttpToolsProtocol)
    assert options["http"].header_timeout == 10
    assert options["limit_concurrency"] == 10_000


async def test_the_app_runs_with_the_collector_thresholds_of_serve(
    make_settings: SettingsFactory,
) -> None:
    original = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # CPython's default, as a plain `uvicorn --factory` starts
    try:
        async with LifespanManager(create_app(make_settings()), startup_timeout=60):
            assert gc.get_threshold() == GC_THRESHOLDS
        # Given back at shutdown: several apps share a test process.
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*original)


def run_create_admin(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, *args: str, password: str | None
) -> Any:
    """``imageshark create-admin`` on ``settings``' data folder, password from the environment."""
    monkeypatch.setattr(cli, "configure_logging", lambda settings: None)
    monkeypatch.setenv("IMAGESHARK_DATA_DIR", str(settings.data_dir))
    if password is None:
        monkeypatch.delenv(cli.ADMIN_PASSWORD_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(cli.ADMIN_PASSWORD_VARIABLE, password)
    return CliRunner().invoke(cli.main, ["create-admin", *args])


def stored_account(settings: Settings, email: str) -> Account | None:
    """The account of ``email`` in ``settings``' database (migrated first), or None."""
    upgrade(settings)

    async def read() -> Account | None:
        database = Database(settings)
        try:
            return await AccountRepository(database).by_email(email)
        finally:
            await database.close()

    return asyncio.run(read())


def test_create_admin_creates_then_promotes(
    monkeypatch: pytest.MonkeyPatch, make_settings: SettingsFactory
) -> None:
    settings = make_settings()
    result = run_create_admin(
        monkeypatch, settings, "Root@Example.ORG", password="a sturdy admin secret"
    )
    assert result.exit_code == 0, result.output
    assert "now an admin (new account)" in result.output
    account = stored_account(settings, "Root@example.org")
    assert account is not None and account.is_admin and not account.disabled
    first_hash = account.password_hash
    again = run_create_admin(
        monkeypatch, settings, "Root@example.org", password="another admin secret"
    )
    assert again.exit_code == 0, again.output
    promoted = stored_account(settings, "Root@example.org")
    assert promoted is not None and promoted.is_admin
    assert promoted.password_hash == first_hash  # an existing account keeps its password


def test_create_admin_refuses_weak_passwords_and_bad_input(
    monkeypatch: pytest.MonkeyPatch, make_settings: SettingsFactory
) -> None:
    settings = make_settings()
    cases = [
        ("short1!", "too short"),
        ("aaaaaaaaaaaaaaaa", "too repetitive"),
        ("rootrootroot-2026", "contains the e-mail address"),
    ]
    for password, message in cases:
        result = run_create_admin(monkeypatch, settings, "root@example.org", password=password)
        assert result.exit_code == cli.EXIT_PASSWORD_REFUSED, result.output
        assert message in result.output
    bad = run_create_admin(monkeypatch, settings, "not an address", password="a sturdy secret")
    assert bad.exit_code == cli.EXIT_USAGE and "not an e-mail address" in bad.output
    # No variable and no terminal (CliRunner's stdin is none): nothing is read from argv.
    missing = run_create_admin(monkeypatch, settings, "root@example.org", password=None)
    assert missing.exit_code == cli.EXIT_USAGE and cli.ADMIN_PASSWORD_VARIABLE in missing.output
    assert stored_account(settings, "root@example.org") is None


def test_create_admin_reads_the_password_twice_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, make_settings: SettingsFactory
) -> None:
    settings = make_settings()
    typed = iter(["typed admin secret", "typed admin secret", "one secret here", "another one"])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt: next(typed))
    monkeypatch.setattr(cli, "stdin_is_terminal", lambda: True)
    ok = run_create_admin(monkeypatch, settings, "tty@example.org", password=None)
    assert ok.exit_code == 0, ok.output
    differ = run_create_admin(monkeypatch, settings, "tty2@example.org", password=None)
    assert differ.exit_code == cli.EXIT_PASSWORD_REFUSED and "differ" in differ.output
    assert stored_account(settings, "tty2@example.org") is None


def test_create_admin_needs_an_up_to_date_schema_without_migrate_on_start(
    monkeypatch: pytest.MonkeyPatch, make_settings: SettingsFactory
) -> None:
    settings = make_settings()
    monkeypatch.setenv("IMAGESHARK_MIGRATE_ON_START", "false")
    result = run_create_admin(monkeypatch, settings, "root@example.org", password="a sturdy secret")
    assert result.exit_code == cli.EXIT_SCHEMA_OUTDATED, result.output
    assert "imageshark migrate" in result.output
