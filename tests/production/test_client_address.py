"""The client address behind a reverse proxy cannot be forged with X-Forwarded-For.

A real ``imageshark serve`` process behind :class:`AppendingProxy`, which appends the address it
was reached from to ``X-Forwarded-For`` as Caddy and nginx do. The client reaches the proxy
from 127.0.0.2 (another loopback address than the proxy's own 127.0.0.1, so the two can be told
apart) and sends a forged ``X-Forwarded-For`` of its own, a new address on every request, while
guessing a passcode room's passcode. The join limit (10/minute per address) must still stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from tests.production.processes import Replica, free_port, running
from web.settings import Settings

CLIENT_ADDRESS = "127.0.0.2"
GUESSES = 25


class AppendingProxy:
    """A loopback HTTP/1.1 reverse proxy for one request per connection: it adds the peer's
    address to the request's ``X-Forwarded-For`` (kept as sent, then ``, <peer>``) and
    ``X-Forwarded-Proto: http``, forwards it to ``target`` and pipes the answer back.

    :param target: (host, port) of the server behind it.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # Python 3.11's wait_closed() does not wait for the connection handlers: end them here
            # so none is left for the garbage collector with an open transport.
            for task in self._handlers:
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[0]
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        up_writer: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
            headers: list[tuple[str, str]] = []
            forwarded: list[str] = []
            length = 0
            for line in lines:
                name, _, value = line.partition(":")
                lower = name.strip().lower()
                if lower == "x-forwarded-for":
                    forwarded.append(value.strip())
                elif lower not in ("connection", "x-forwarded-proto"):
                    headers.append((name.strip(), value.strip()))
                if lower == "content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            forwarded.append(peer)
            headers += [
                ("X-Forwarded-For", ", ".join(forwarded)),
                ("X-Forwarded-Proto", "http"),
                ("Connection", "close"),
            ]
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            up_writer.write(
                "\r\n".join([request_line, *(f"{n}: {v}" for n, v in headers), "", ""]).encode(
                    "latin-1"
                )
                + body
            )
            await up_writer.drain()
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            self._handlers.discard(task)
            if up_writer is not None:
                up_writer.close()
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def proxied_service(tmp_path: Path, env: dict[str, str]) -> AsyncIterator[str]:
    """``imageshark serve`` (embedded database) behind an :class:`AppendingProxy`; yields the
    proxy's base URL."""
    replica = Replica(
        "app",
        {
            "IMAGESHARK_DATA_DIR": str(tmp_path / "data"),
            "IMAGESHARK_RENDITION_WORKERS": "1",
            **env,
        },
    )
    for name in ("DATABASE_URL", "REDIS_URL"):
        replica.env.pop(name, None)
    async with running(replica):
        proxy = AppendingProxy(("127.0.0.1", replica.port))  # the port the replica bound
        await proxy.start()
        try:
            yield proxy.base_url
        finally:
            await proxy.stop()


async def forged_guesses(base_url: str) -> list[int]:
    """Create a passcode room, then make :data:`GUESSES` wrong passcode attempts from
    127.0.0.2, each with a forged ``X-Forwarded-For: 203.0.113.<n>``; their statuses."""
    transport = httpx.AsyncHTTPTransport(local_address=CLIENT_ADDRESS)
    async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=30) as http:
        created = await http.post("/api/rooms", json={"title": "Vault", "passcode": "tulip-42"})
        assert created.status_code == 201, created.text
        url = f"/api/rooms/{created.json()['token']}/participants"
        statuses = []
        for n in range(GUESSES):
            response = await http.post(
                url,
                json={"name": "Mallory", "passcode": f"guess-{n}"},
                headers={"X-Forwarded-For": f"203.0.113.{n + 1}"},
            )
            statuses.append(response.status_code)
        return statuses


@pytest.mark.parametrize(
    "env",
    [
        # The trust the shipped compose file and chart used to give uvicorn; now not read.
        {"FORWARDED_ALLOW_IPS": "*"},
        {"IMAGESHARK_TRUSTED_PROXIES": "127.0.0.1"},
        {"IMAGESHARK_TRUSTED_PROXIES": "10.0.0.0/8,127.0.0.1/32,::1"},
    ],
)
async def test_forged_forwarded_for_does_not_escape_the_join_limit(
    tmp_path: Path, env: dict[str, str]
) -> None:
    async with proxied_service(tmp_path, env) as base_url:
        statuses = await forged_guesses(base_url)
    # 10 attempts per address and minute: the 11th on is refused, whatever the header says.
    assert statuses == [403] * 10 + [429] * (GUESSES - 10), statuses


async def test_untrusted_peers_forwarded_headers_are_ignored(tmp_path: Path) -> None:
    # Nobody trusted: every request counts against the proxy's own address; nothing forged
    # (nor the proxy's honest entry) is believed.
    async with proxied_service(tmp_path, {"IMAGESHARK_TRUSTED_PROXIES": ""}) as base_url:
        statuses = await forged_guesses(base_url)
    assert statuses.count(429) == GUESSES - 10, statuses


@pytest.mark.parametrize("value", ["*", "proxy.internal", "10.0.0.0/33"])
def test_trusted_proxies_refuse_what_is_not_an_address(value: str) -> None:
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings(trusted_proxies=value)


def test_trusted_proxies_default_to_loopback() -> None:
    assert "IMAGESHARK_TRUSTED_PROXIES" not in os.environ
    assert Settings().trusted_proxies == ("127.0.0.1", "::1")
