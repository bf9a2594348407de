"""A wall that loses its connection catches up exactly when it comes back, without reload.

The wall page is served through a TCP proxy that the test cuts (open connections dropped, new
ones refused) while photos are uploaded and one is deleted directly on the server; when the
proxy is restored the page's Socket.IO client reconnects with the last ``seq`` it applied and
must end up showing exactly the room's images.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from playwright.async_api import Browser, expect

from tests.conftest import LiveServer
from tests.e2e.host_wall_session import screenshot
from tests.e2e.test_live_room_browser import (
    LIVE_TIMEOUT_MS,
    assert_not_reloaded,
    mark_no_reload,
    new_context,
)
from tests.photos import make_image_bytes
from tests.production.processes import TcpProxy

RECONNECT_TIMEOUT_MS = 30_000  # socket.io-client backs off up to 5 s between attempts


async def _upload(http: httpx.AsyncClient, token: str, name: str, width: int) -> dict:
    data = make_image_bytes("jpeg", name=name, size=(width, width * 3 // 4))
    response = await http.post(f"/api/rooms/{token}/images", files={"file": ("p.jpg", data)})
    assert response.status_code == 201, response.text
    return response.json()


async def test_wall_offline_then_back_shows_exactly_the_rooms_images(
    browser: Browser,
    live_server: LiveServer,
) -> None:
    target = urlsplit(live_server.base_url)
    proxy = TcpProxy((target.hostname or "127.0.0.1", target.port or 80))
    await proxy.restore()
    proxied = f"http://127.0.0.1:{proxy.port}"
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = (await http.post("/api/rooms", json={"title": "Reconnect"})).json()
        token = room["token"]
        before = [await _upload(http, token, name, 400) for name in ("coffee", "rocket")]

        context = await new_context(browser, viewport={"width": 1920, "height": 1080})
        wall = await context.new_page()
        await wall.goto(f"{proxied}/r/{token}/wall?min_seconds=1")
        live = wall.locator("#live")
        await expect(live).to_have_attribute("data-state", "live")
        tiles = wall.locator('[data-testid="image"]')
        await expect(tiles).to_have_count(2)
        await mark_no_reload(wall)

        await proxy.cut()
        await expect(live).not_to_have_attribute("data-state", "live", timeout=LIVE_TIMEOUT_MS * 3)
        added = [await _upload(http, token, name, 420) for name in ("chelsea", "astronaut")]
        deleted = await http.delete(
            f"/api/rooms/{token}/images/{before[0]['id']}",
            headers={"Authorization": f"Bearer {room['host_key']}"},
        )
        assert deleted.status_code == 204
        await screenshot(wall, "wall-1080p-offline")

        await proxy.restore()
        await expect(live).to_have_attribute("data-state", "live", timeout=RECONNECT_TIMEOUT_MS)
        expected = sorted(str(image["id"]) for image in [before[1], *added])
        await expect(tiles).to_have_count(3, timeout=LIVE_TIMEOUT_MS)
        shown = sorted(
            [await tile.get_attribute("data-image-id") or "" for tile in await tiles.all()]
        )
        assert shown == expected
        listing = (await http.get(f"/api/rooms/{token}/images")).json()
        assert sorted(str(item["id"]) for item in listing["items"]) == expected
        # The photos missed offline queue for the spotlight in upload order, each on screen
        # for the wall's minimum (?min_seconds=1): the newest comes last.
        await expect(wall.locator("#spotlight")).to_have_attribute(
            "data-image-id", str(added[-1]["id"]), timeout=LIVE_TIMEOUT_MS + 2000
        )
        await assert_not_reloaded(wall)
        await screenshot(wall, "wall-1080p-back-online")
        await context.close()
    await proxy.cut()
