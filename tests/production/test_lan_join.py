"""The join URL a phone on the venue network gets: ``imageshark serve`` bound to every
interface, reached from a network namespace this test creates (a veth pair, as a phone on the
venue's Wi-Fi reaches the laptop), answers join URLs on the address that client used, and
those URLs open from the phone's side. Traffic goes only to that namespace and to loopback."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.production.processes import Replica, running

# Run inside the namespace: create a room, then open its join URL; prints both as JSON.
PHONE = """
import json, sys, urllib.request
base = sys.argv[1]
request = urllib.request.Request(
    base + "/api/rooms", data=json.dumps({"title": "Venue"}).encode(),
    headers={"content-type": "application/json"}, method="POST")
room = json.load(urllib.request.urlopen(request, timeout=20))
page = urllib.request.urlopen(room["join_url"], timeout=20)
print(json.dumps({"room": room, "status": page.status, "page": page.read().decode()}))
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextmanager
def venue_network() -> Iterator[tuple[str, str, str]]:
    """A network namespace joined to this machine by a veth pair on a /30 of 10.231.0.0/16;
    yields (namespace, host-side address, namespace-side address). Removed at the end."""
    tag = secrets.token_hex(3)
    namespace, outside, inside = f"isk{tag}", f"iskh{tag}", f"iskn{tag}"
    block = secrets.randbelow(64) * 4  # a random /30, so concurrent runs do not collide
    third = secrets.randbelow(256)
    host_address, phone_address = f"10.231.{third}.{block + 1}", f"10.231.{third}.{block + 2}"
    try:
        ip("netns", "add", namespace)
        ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", namespace)
        ip("addr", "add", f"{host_address}/30", "dev", outside)
        ip("link", "set", outside, "up")
        ip("-n", namespace, "addr", "add", f"{phone_address}/30", "dev", inside)
        ip("-n", namespace, "link", "set", inside, "up")
        ip("-n", namespace, "link", "set", "lo", "up")
        yield namespace, host_address, phone_address
    finally:
        subprocess.run(["ip", "link", "del", outside], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30)


async def test_phone_on_venue_network_gets_a_join_url_it_can_open(tmp_path: Path) -> None:
    replica = Replica(
        "app",
        {"IMAGESHARK_DATA_DIR": str(tmp_path / "data"), "IMAGESHARK_RENDITION_WORKERS": "1"},
        host="0.0.0.0",
    )
    for name in ("DATABASE_URL", "REDIS_URL", "IMAGESHARK_PUBLIC_BASE_URL", "IMAGESHARK_HOST"):
        replica.env.pop(name, None)
    with venue_network() as (namespace, host_address, _phone):
        async with running(replica):
            # serve says where to open it and where guests join.
            assert any(
                f"ImageShark: open http://127.0.0.1:{replica.port}" in line
                for line in replica.output
            ), replica.output[-10:]
            base = f"http://{host_address}:{replica.port}"
            phone = await asyncio.to_thread(
                subprocess.run,
                ["ip", "netns", "exec", namespace, sys.executable, "-c", PHONE, base],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert phone.returncode == 0, phone.stderr
            seen = json.loads(phone.stdout)
            room = seen["room"]
            assert httpx.URL(room["join_url"]).netloc.decode() == f"{host_address}:{replica.port}"
            assert room["join_url"] == f"{base}/j/{room['code']}"
            assert room["join_url_reachable"] is True and room["join_url_warning"] is None
            assert seen["status"] == 200 and room["token"] in seen["page"]
            # From loopback on the same server: the LAN address, or flagged.
            async with httpx.AsyncClient(base_url=replica.base_url, timeout=30) as http:
                local = (await http.post("/api/rooms", json={"title": "Laptop"})).json()
            host = httpx.URL(local["join_url"]).host
            assert host != "127.0.0.1" or local["join_url_reachable"] is False
            if host != "127.0.0.1":
                assert local["join_url_reachable"] is True
