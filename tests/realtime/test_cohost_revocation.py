"""Removing a co-host reaches every replica at once: two in-process replicas on PostgreSQL and
Redis; the co-host's live socket on replica B is told ``host_access_revoked`` and disconnected
when the owner removes them through replica A, while the owner's and a guest's sockets stay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import redis.asyncio as aioredis
import socketio

from tests.conftest import REDIS_URL, AppClient, LiveServer, SettingsFactory, run_server
from tests.polling import poll_until
from tests.web.accounts_helpers import signed_up_session
from tests.web.test_room_hosts import live_refusal


@asynccontextmanager
async def serving(settings: Any) -> AsyncIterator[LiveServer]:
    async for server in run_server(settings):
        yield server


class HostSocket:
    """A live connection with a session cookie, recording ``host_access_revoked`` and the
    server's disconnect."""

    def __init__(self, base_url: str, token: str, cookie: str) -> None:
        self.base_url, self.token, self.cookie = base_url, token, cookie
        self.client = socketio.AsyncClient(reconnection=False)
        self.revoked = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.revoked_before_disconnect = False
        self.client.on("host_access_revoked", self._revoked)
        self.client.on("disconnect", self._disconnected)

    async def _revoked(self, data: Any) -> None:
        assert data == {}
        self.revoked_before_disconnect = not self.disconnected.is_set()
        self.revoked.set()

    async def _disconnected(self, reason: Any = None) -> None:
        self.disconnected.set()

    async def connect(self) -> None:
        await self.client.connect(
            self.base_url,
            auth={"token": self.token, "name": "Host"},
            headers={"Cookie": self.cookie},
            transports=["websocket"],
            wait_timeout=10,
        )


async def test_removing_a_cohost_on_one_replica_demotes_their_socket_on_another(
    make_settings: SettingsFactory, pg_database_url: str, redis_prefix: str
) -> None:
    settings = make_settings(
        database_url=pg_database_url, redis_url=REDIS_URL, redis_prefix=redis_prefix
    )
    async with serving(settings) as a, serving(settings) as b:
        # Both replicas listen for revocations before anything is removed.
        async with aioredis.Redis.from_url(REDIS_URL) as redis:
            channel = f"{redis_prefix}:host-revocations"

            async def both_subscribed() -> bool:
                [(_, count)] = await redis.pubsub_numsub(channel)
                return int(count) == 2

            await poll_until(both_subscribed, deadline=10, what="both replicas subscribed")
        async with httpx.AsyncClient(base_url=a.base_url, timeout=30) as http:
            app = AppClient(http=http, settings=settings, app=None)
            owner = await signed_up_session(app, "ann@revoked.example")
            cohost = await signed_up_session(app, "bo@revoked.example")
            room = (
                await http.post(
                    "/api/rooms", json={"title": "Gala", "passcode": "orchid"}, headers=owner
                )
            ).json()
            token = room["token"]
            issued = await http.post(f"/api/rooms/{token}/cohost-invites", json={}, headers=owner)
            invite = issued.json()["url"].rsplit("/", 1)[1]
            accepted = await http.post(f"/api/invites/{invite}/accept", headers=cohost)
            assert accepted.status_code == 200
            hosts = (await http.get(f"/api/rooms/{token}/cohosts", headers=owner)).json()
            cohost_id = hosts["hosts"][1]["account_id"]

            cohost_socket = HostSocket(b.base_url, token, cohost["Cookie"])
            owner_socket = HostSocket(b.base_url, token, owner["Cookie"])
            await cohost_socket.connect()
            await owner_socket.connect()
            try:
                removed = await http.delete(
                    f"/api/rooms/{token}/cohosts/{cohost_id}", headers=owner
                )
                assert removed.status_code == 204
                await asyncio.wait_for(cohost_socket.revoked.wait(), timeout=10)
                await asyncio.wait_for(cohost_socket.disconnected.wait(), timeout=10)
                assert cohost_socket.revoked_before_disconnect
                # The owner's socket on B is untouched: it still receives the room's events.
                assert owner_socket.client.connected and not owner_socket.revoked.is_set()
                updated = asyncio.Event()
                owner_socket.client.on("room_updated", lambda data: updated.set())
                changed = await http.patch(
                    f"/api/rooms/{token}", json={"wall_blanked": True}, headers=owner
                )
                assert changed.status_code == 200
                await asyncio.wait_for(updated.wait(), timeout=10)
            finally:
                await owner_socket.client.disconnect()
                await cohost_socket.client.disconnect()
            # Coming back, the former co-host is no longer admitted to the passcode room.
            refusal = await live_refusal(b.base_url, token, cohost["Cookie"])
            assert refusal is not None and refusal["data"]["code"] == "passcode_required"
            again = await http.get(f"/api/rooms/{token}/pending", headers=cohost)
            assert again.status_code == 403
