"""The host page's photo viewer downloads a photo at full quality in a room with a passcode,
where the host's browser has no participant cookie and a plain link cannot send the host key:
each click (or Enter) fetches a fresh presigned link. The same works in an open room, and a
failed request shows an error toast over the viewer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Request, Route, expect

from tests.conftest import LiveServer
from tests.e2e.host_wall_session import (
    LAPTOP,
    ConsoleLog,
    api_client,
    create_room,
    join,
    new_context,
    open_host,
    screenshot,
    set_host_key,
    upload_ok,
)
from tests.pipeline.test_renditions import assert_clean_jpeg

LINKS_URL = re.compile(r"/api/rooms/[^/]+/links$")
PHOTO_SIZE = (1200, 900)


@pytest.mark.parametrize("passcode", ["tulips-42", None], ids=["passcode", "open"])
async def test_host_downloads_full_quality_from_the_viewer(
    live_server: LiveServer, browser: Browser, tmp_path: Path, passcode: str | None
) -> None:
    console = ConsoleLog()
    console.allow(r"ERR_CONNECTION_REFUSED")
    title = "Garden party"
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, title, passcode=passcode)
        guest = await join(http, room, "Ana", passcode=passcode)
        photo = await upload_ok(http, room, guest, name="rocket", width=PHOTO_SIZE[0])
        plain = f"/api/rooms/{room['token']}/images/{photo['id']}/download"
        http.cookies.clear()
        # The gap: with a passcode, the plain link is refused to a browser without a cookie.
        assert (await http.get(plain)).status_code == (401 if passcode else 200)

    context = await new_context(browser, viewport=LAPTOP, accept_downloads=True)
    await set_host_key(context, room)
    host = await open_host(console.watch(await context.new_page(), "host"), room)
    assert not [c for c in await context.cookies() if c["name"].startswith("imageshark_p_")]
    link_requests: list[Request] = []
    host.on("request", lambda r: link_requests.append(r) if LINKS_URL.search(r.url) else None)

    card = host.locator(f'#gallery [data-image-id="{photo["id"]}"]')
    await card.get_by_role("button", name=re.compile("^Open photo")).click()
    viewer = host.get_by_test_id("lightbox")
    await expect(viewer).to_be_visible()
    await expect(viewer.locator("img")).to_have_attribute("src", photo["url"])
    link = viewer.get_by_role("link", name="Download full quality")
    await expect(link).to_have_attribute("href", plain)

    # The link request fails: an error toast shows inside the viewer, which stays open.
    async def refuse(route: Route) -> None:
        await route.abort("connectionrefused")

    await host.route(LINKS_URL, refuse)
    await link.click()
    error = viewer.locator(".toast-error")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("Couldn't reach ImageShark")
    await expect(link).to_have_text("Download full quality")
    await expect(link).not_to_have_attribute("aria-busy", "true")
    await screenshot(host, f"host-{'passcode' if passcode else 'open-room'}-download-error")
    await host.unroute(LINKS_URL, refuse)

    # From the keyboard: Enter on the focused link downloads through a presigned link.
    await link.focus()
    async with host.expect_download() as download_info:
        await host.keyboard.press("Enter")
    download = await download_info.value
    assert download.url.startswith(f"{live_server.base_url}{plain}?signature="), download.url
    assert download.suggested_filename == f"{title}-{photo['id']}.jpg"
    saved = tmp_path / "photo.jpg"
    await download.save_as(saved)
    assert await download.failure() is None
    assert_clean_jpeg(saved.read_bytes(), PHOTO_SIZE)
    await expect(viewer).to_be_visible()
    await expect(link).to_be_focused()
    await screenshot(host, f"host-{'passcode' if passcode else 'open-room'}-download")

    # A second click asks for a fresh link (none is kept) and downloads again.
    async with host.expect_download() as again_info:
        await link.click()
    again = await again_info.value
    assert again.url.startswith(f"{live_server.base_url}{plain}?signature="), again.url
    assert await again.failure() is None
    assert len(link_requests) == 3  # the refused one, then one per download
    assert all(r.method == "POST" for r in link_requests)
    await context.close()

    assert any("ERR_CONNECTION_REFUSED" in line for line in console.network), console.network
    console.assert_clean()
