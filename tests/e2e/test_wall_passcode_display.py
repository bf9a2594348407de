"""The passcode on a passcode room's wall: by default the wall says one is needed and to ask
the host; the host's switch "Show the passcode on the wall" puts the passcode itself under the
QR code, live, on the host's own wall (host key) and on a projector's wall that joined with the
passcode (cookie); a changed passcode follows, the switch off brings the hint back, a removed
passcode leaves neither, and so does closing the room. A room without a passcode shows neither
and has no such switch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.conftest import LiveServer
from tests.e2e.host_wall_session import (
    FULL_HD,
    LAPTOP,
    LIVE_TIMEOUT_MS,
    ConsoleLog,
    api_client,
    create_room,
    host_headers,
    host_view,
    join,
    new_context,
    open_host,
    open_wall,
    screenshot,
    set_host_key,
    upload_ok,
)

SWITCH = "Show the passcode on the wall"
NEEDED_TEXT = "Passcode needed · ask the host"


async def expect_passcode_shown(wall: Page, passcode: str) -> None:
    shown = wall.get_by_test_id("wall-passcode")
    await expect(shown).to_have_text(f"Passcode {passcode}", timeout=LIVE_TIMEOUT_MS)
    await expect(shown).to_be_visible()
    await expect(wall.get_by_test_id("wall-passcode-needed")).to_have_count(0)


async def expect_passcode_needed(wall: Page) -> None:
    needed = wall.get_by_test_id("wall-passcode-needed")
    await expect(needed).to_have_text(NEEDED_TEXT, timeout=LIVE_TIMEOUT_MS)
    await expect(needed).to_be_visible()
    await expect(wall.get_by_test_id("wall-passcode")).to_have_count(0)


async def expect_no_passcode_line(wall: Page) -> None:
    for test_id in ("wall-passcode", "wall-passcode-needed"):
        await expect(wall.get_by_test_id(test_id)).to_have_count(0, timeout=LIVE_TIMEOUT_MS)


async def style_of(page: Page, selector: str) -> dict[str, Any]:
    """``fontFamily`` and ``fontSize`` (px) of the first element matching ``selector``."""
    style: dict[str, Any] = await page.locator(selector).first.evaluate(
        "(el) => { const s = getComputedStyle(el);"
        " return {fontFamily: s.fontFamily, fontSize: parseFloat(s.fontSize)}; }"
    )
    return style


async def patched(host: Page, action: Callable[[], Awaitable[object]]) -> None:
    """Run ``action`` (a coroutine function) and wait for the PATCH it sends to succeed: the
    host page shows a change at once, before the server has it."""
    async with host.expect_response(lambda response: response.request.method == "PATCH") as sent:
        await action()
    assert (await sent.value).ok


async def save_passcode(host: Page, passcode: str) -> None:
    """Type ``passcode`` ("" removes it) in the host's settings form and save it."""
    await host.get_by_test_id("setting-passcode").fill(passcode)
    await patched(host, host.get_by_test_id("settings-save").click)
    await expect(host.get_by_test_id("settings-save")).to_be_disabled()


async def test_wall_shows_the_passcode_only_when_the_host_allows_it(
    live_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Board games night", passcode="4821")

        host_context = await new_context(browser, viewport=LAPTOP)
        await set_host_key(host_context, room)
        host = await open_host(console.watch(await host_context.new_page(), "host"), room)
        # The host's own wall: a second tab of the browser holding the host key.
        host_wall_context = await new_context(browser, viewport=FULL_HD)
        await set_host_key(host_wall_context, room)
        host_wall = await open_wall(
            console.watch(await host_wall_context.new_page(), "host-wall"), room
        )
        await expect_passcode_needed(host_wall)
        await screenshot(host_wall, "wall-passcode-needed")

        # A projector without the key, in by the passcode (the participant "Wall").
        projector_context = await new_context(browser, viewport=FULL_HD)
        projector = console.watch(await projector_context.new_page(), "projector")
        await projector.goto(room["wall_url"])
        await projector.get_by_label("Room passcode").fill(room["passcode"])
        await projector.get_by_role("button", name="Show photos").click()
        await expect(projector.locator("#live")).to_have_attribute("data-state", "live")
        await expect_passcode_needed(projector)
        walls = (host_wall, projector)

        switch = host.get_by_role("switch", name=SWITCH)
        await expect(switch).to_have_attribute("aria-checked", "false")
        await patched(host, switch.click)
        await expect(switch).to_have_attribute("aria-checked", "true")
        for wall in walls:
            await expect_passcode_shown(wall, room["passcode"])
        # Readable from far: monospace, larger than the join URL under it.
        value = await style_of(host_wall, '[data-testid="wall-passcode"] .wall-passcode-value')
        url = await style_of(host_wall, '[data-testid="join-url"]')
        assert "mono" in value["fontFamily"], value
        assert value["fontSize"] >= 2 * url["fontSize"], (value, url)
        await screenshot(host_wall, "wall-passcode-shown")

        await save_passcode(host, "7390-amber")
        stored = await host_view(http, room)
        assert stored["passcode"] == "7390-amber" and stored["wall_show_passcode"] is True
        for wall in walls:
            await expect_passcode_shown(wall, stored["passcode"])

        await patched(host, switch.click)
        await expect(switch).to_have_attribute("aria-checked", "false")
        for wall in walls:
            await expect_passcode_needed(wall)

        # Back on, then the passcode removed: an open room's wall says nothing of one.
        await patched(host, switch.click)
        for wall in walls:
            await expect_passcode_shown(wall, stored["passcode"])
        await save_passcode(host, "")
        await expect(host.get_by_role("switch", name=SWITCH)).to_be_hidden()
        for wall in walls:
            await expect_no_passcode_line(wall)
        # A passcode added again, the setting still on: shown at once.
        await save_passcode(host, room["passcode"])
        await expect(switch).to_be_visible()
        for wall in walls:
            await expect_passcode_shown(wall, room["passcode"])
        # With photos, a large QR code: the passcode keeps its place in the side panel.
        await patched(host, host.get_by_test_id("wall-qr-size").get_by_text("Large").click)
        guest = await join(http, room, "Jo", passcode=room["passcode"])
        photo = await upload_ok(http, room, guest, name="rocket")
        await expect(host_wall.get_by_test_id("wall-spotlight")).to_have_attribute(
            "data-image-id", str(photo["id"]), timeout=LIVE_TIMEOUT_MS
        )
        await expect(host_wall.get_by_test_id("wall")).to_have_attribute("data-qr", "large")
        await expect(host_wall.get_by_test_id("wall-passcode")).to_be_in_viewport()
        await screenshot(host_wall, "wall-passcode-shown-photos")

        # A closed room takes nobody in: no passcode line any more.
        closed = await http.post(f"/api/rooms/{room['token']}/close", headers=host_headers(room))
        assert closed.status_code == 200, closed.text
        for wall in walls:
            await expect(wall.get_by_test_id("wall-closed")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
            await expect_no_passcode_line(wall)

        for context in (host_context, host_wall_context, projector_context):
            await context.close()
    console.assert_clean()


async def test_public_room_wall_says_nothing_of_a_passcode(
    live_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Open house", wall_show_passcode=True)
        host_context = await new_context(browser, viewport=LAPTOP)
        await set_host_key(host_context, room)
        host = await open_host(console.watch(await host_context.new_page(), "host"), room)
        await expect(host.get_by_role("switch", name=SWITCH)).to_be_hidden()
        wall = await open_wall(console.watch(await host_context.new_page(), "wall"), room)
        await expect(wall.get_by_test_id("qr")).to_be_visible()
        await expect_no_passcode_line(wall)
        await expect(wall.locator("#wall-passcode")).to_be_hidden()
        await host_context.close()
    console.assert_clean()
