"""When phones cannot open the join URL (here the test server's 127.0.0.1: it binds loopback
only, so no LAN address replaces it), the host page and the wall say so in a visible banner
that tells the host what to do; with IMAGESHARK_PUBLIC_BASE_URL set, neither shows one."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.conftest import LiveServer, SettingsFactory, run_server
from tests.e2e.host_wall_session import (
    FULL_HD,
    LAPTOP,
    api_client,
    create_room,
    new_context,
    open_host,
    open_wall,
    set_host_key,
)


async def test_host_page_and_wall_warn_when_the_join_url_is_loopback(
    live_server: LiveServer, browser: Browser
) -> None:
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Loopback party")
    assert room["join_url"].startswith("http://127.0.0.1:")
    assert room["join_url_reachable"] is False
    assert "Phones cannot open 127.0.0.1" in room["join_url_warning"]
    context = await new_context(browser, viewport=LAPTOP)
    await set_host_key(context, room)
    host = await open_host(await context.new_page(), room)
    banner = host.get_by_test_id("join-url-warning")
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("IMAGESHARK_PUBLIC_BASE_URL")
    await expect(banner).to_be_in_viewport()
    wall_context = await new_context(browser, viewport=FULL_HD)
    wall = await open_wall(await wall_context.new_page(), room)
    await expect(wall.get_by_test_id("join-url-warning")).to_be_visible()
    await expect(wall.get_by_test_id("join-url-warning")).to_contain_text("Phones cannot open")


async def test_no_warning_with_a_public_base_url(
    make_settings: SettingsFactory, browser: Browser
) -> None:
    async for server in run_server(make_settings(public_base_url="http://photos.example.org")):
        async with api_client(server.base_url) as http:
            room = await create_room(http, "Proxied party")
        assert room["join_url"].startswith("http://photos.example.org/")
        assert room["join_url_reachable"] is True and room["join_url_warning"] is None
        context = await new_context(browser, viewport=LAPTOP)
        await set_host_key(context, room)
        page = await context.new_page()
        # The view's URLs name the public host; open the page on the test server itself.
        await open_host(page, {**room, "host_url": f"{server.base_url}/r/{room['token']}/host"})
        await expect(page.get_by_test_id("join-url")).to_have_text(room["join_url"])
        await expect(page.get_by_test_id("join-url-warning")).to_have_count(0)
