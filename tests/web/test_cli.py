"""`imageshark serve`: the uvicorn settings the live path depends on, and the part of them the
app applies itself, for any server (`uvicorn --factory web.app:create_app`)."""

from __future__ import annotations

import gc
from typing import Any

import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from click.testing import CliRunner
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tests.conftest import SettingsFactory
from web import cli
from web.app import GC_THRESHOLDS, create_app


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
