"""`imageshark serve`: the uvicorn settings the live path depends on."""

from __future__ import annotations

import gc
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from web import cli


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
