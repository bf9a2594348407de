"""A phone on the venue's network gets a join URL it can open.

A real ``imageshark serve`` bound to every interface (the embedded default). A network namespace
the test creates, joined to this machine by a veth pair (this side 10.231.0.1/30, the namespace's
10.231.0.2/30), stands for a phone on the venue network: from inside it, ``curl`` creates a room
at http://10.231.0.1:PORT/ and opens the join URL the answer names. The join URL must be the
address that client used, and must answer. Traffic goes only to loopback and to that namespace.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.production.processes import Replica, running

HOST_SIDE = "10.231.0.1"
NAMESPACE_SIDE = "10.231.0.2"


class AllInterfacesReplica(Replica):
    """A :class:`Replica` bound to 0.0.0.0 (every interface), as ``imageshark serve`` is by
    default, instead of 127.0.0.1."""

    def _command(self) -> list[str]:
        return [
            sys.executable,
            *("-m", self.module, "serve"),
            *("--host", "0.0.0.0", "--port", str(self.port)),
        ]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextmanager
def venue_namespace() -> Iterator[str]:
    """A network namespace reaching this machine at 10.231.0.1 over a veth pair; its name.
    Names are unique to this test process; the namespace and the pair are deleted at the end."""
    tag = f"{os.getpid() % 100000}"
    namespace, host_end, ns_end = f"isk-venue-{tag}", f"iskh{tag}", f"iskn{tag}"
    _ip("netns", "add", namespace)
    try:
        _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        _ip("link", "set", ns_end, "netns", namespace)
        _ip("addr", "add", f"{HOST_SIDE}/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        _ip("-n", namespace, "addr", "add", f"{NAMESPACE_SIDE}/30", "dev", ns_end)
        _ip("-n", namespace, "link", "set", ns_end, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        yield namespace
    finally:
        # Deleting one end of a veth pair deletes both; the namespace holds the other end.
        subprocess.run(["ip", "link", "delete", host_end], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "delete", namespace], capture_output=True, timeout=30)


async def curl_in(namespace: str, *args: str) -> tuple[int, str]:
    """Run ``curl`` inside ``namespace``; (HTTP status, body). No proxy from the environment."""
    process = await asyncio.create_subprocess_exec(
        *("ip", "netns", "exec", namespace, "curl", "--silent", "--show-error", "--noproxy", "*"),
        *("--max-time", "30", "--output", "-", "--write-out", "\n%{http_code}", *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode(errors="replace")
    body, _, status = out.decode().rpartition("\n")
    return int(status), body


async def test_join_url_is_the_address_a_phone_on_the_venue_network_used(tmp_path: Path) -> None:
    replica = AllInterfacesReplica(
        "venue",
        {"IMAGESHARK_DATA_DIR": str(tmp_path / "data"), "IMAGESHARK_RENDITION_WORKERS": "1"},
    )
    for name in ("DATABASE_URL", "REDIS_URL", "IMAGESHARK_PUBLIC_BASE_URL", "IMAGESHARK_HOST"):
        replica.env.pop(name, None)
    with venue_namespace() as namespace:
        async with running(replica):
            venue_base = f"http://{HOST_SIDE}:{replica.port}"
            status, body = await curl_in(
                namespace,
                *("-X", "POST", f"{venue_base}/api/rooms"),
                *("-H", "Content-Type: application/json", "-H", f"Origin: {venue_base}"),
                *("--data", json.dumps({"title": "Venue night"})),
            )
            assert status == 201, body
            room = json.loads(body)
            join = urlsplit(room["join_url"])
            assert (join.scheme, join.netloc) == ("http", f"{HOST_SIDE}:{replica.port}")
            assert room["join_url_reachable"] is True and room["join_url_warning"] is None

            status, page = await curl_in(namespace, room["join_url"], "--location")
            assert status == 200, page
            assert "Venue night" in page

            # The laptop itself, on loopback: a join URL off loopback, or a warning saying so.
            async with httpx.AsyncClient(base_url=replica.base_url, timeout=30) as http:
                response = await http.get(f"/api/rooms/{room['token']}")
            assert response.status_code == 200
            local = response.json()
            host = urlsplit(local["join_url"]).hostname or ""
            if host.startswith("127.") or host in ("localhost", "::1"):
                assert local["join_url_reachable"] is False
                assert "IMAGESHARK_PUBLIC_BASE_URL" in local["join_url_warning"]
            else:
                assert local["join_url_reachable"] is True
