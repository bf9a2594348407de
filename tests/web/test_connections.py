"""The connection limits' start-up pieces: the header-timeout protocol's probe of uvicorn and
the open-file limit."""

from __future__ import annotations

import subprocess
import sys

import pytest
from uvicorn.protocols.http import httptools_impl

from web.connections import HeaderTimeoutProtocol, http_protocol


def test_header_timeout_protocol_subclasses_uvicorns_httptools_protocol() -> None:
    protocol = http_protocol(2.5)
    assert not isinstance(protocol, str)
    assert issubclass(protocol, HeaderTimeoutProtocol)
    assert issubclass(protocol, httptools_impl.HttpToolsProtocol)
    assert protocol.header_timeout == 2.5  # type: ignore[attr-defined]


def test_header_timeout_off_or_unknown_uvicorn_falls_back_to_the_stock_protocol(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert http_protocol(None) == "auto"

    class Unexpected:  # an uvicorn whose protocol lost a hook this module overrides
        def connection_made(self) -> None: ...

    monkeypatch.setattr(httptools_impl, "HttpToolsProtocol", Unexpected)
    assert http_protocol(10) == "auto"
    assert "request header timeout disabled" in caplog.text
    assert "on_headers_complete" in caplog.text


def test_open_file_limit_is_raised_to_the_hard_limit() -> None:
    # In a child started with a low soft limit, as many hosts start services (1024).
    result = subprocess.run(
        [
            "prlimit",
            "--nofile=512:4096",
            "--",
            sys.executable,
            "-c",
            "import resource; from web.connections import raise_open_file_limit as r; "
            "print(r(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "(512, 4096) 4096"
