"""The host's room settings, live on every screen: removing a photo, pausing uploads, the
settings form (title, limits, passcode), closing the room. A real host page, a 1080p wall and a
guest's phone page; a second guest uploads over the HTTP API.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Browser, Page, expect

from tests.conftest import LiveServer
from tests.e2e.host_wall_session import (
    FULL_HD,
    LAPTOP,
    LIVE_TIMEOUT_MS,
    ConsoleLog,
    api_client,
    create_room,
    host_view,
    join,
    new_context,
    open_host,
    open_wall,
    screenshot,
    set_host_key,
    upload,
    upload_ok,
    wall_tiles,
)
from tests.photos import make_image_bytes


def card(page: Page, image_id: int) -> Any:
    return page.locator(f'[data-testid="image"][data-image-id="{image_id}"]')


async def open_phone(browser: Browser, room: dict[str, Any], console: ConsoleLog) -> Page:
    """A guest's phone on the participant page, joined as Lea."""
    context = await new_context(
        browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    phone = console.watch(await context.new_page(), "phone")
    await phone.goto(room["join_url"])
    await phone.get_by_test_id("name-input").fill("Lea")
    await phone.get_by_role("button", name="Join", exact=True).click()
    await expect(phone.get_by_test_id("identity")).to_contain_text("Lea")
    await expect(phone.locator("#live")).to_have_attribute("data-state", "live")
    return phone


async def test_remove_pause_edit_and_close_reach_every_screen(
    live_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Lea's farewell")
        guest = await join(http, room, "Tom")
        first = await upload_ok(http, room, guest, name="coffee", caption="Last coffee")
        second = await upload_ok(http, room, guest, name="chelsea")

        host_context = await new_context(browser, viewport=LAPTOP)
        await set_host_key(host_context, room)
        host = await open_host(console.watch(await host_context.new_page(), "host"), room)
        wall_context = await new_context(browser, viewport=FULL_HD)
        wall = await open_wall(console.watch(await wall_context.new_page(), "wall"), room)
        phone = await open_phone(browser, room, console)
        for page in (host, wall, phone):
            await expect(card(page, first["id"])).to_have_count(1)

        # The host removes a photo: gone from the wall and the phone, live. A screen that was
        # just loading one of its renditions gets 404 for it: that is what removal means.
        console.allow(*(re.escape(urlsplit(first[name]).path) for name in ("url", "thumb_url")))
        await card(host, first["id"]).get_by_test_id("delete-image").click()
        await host.get_by_test_id("confirm-dialog").get_by_test_id("confirm-button").click()
        for page in (host, wall, phone):
            await expect(card(page, first["id"])).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
        await expect(wall.get_by_test_id("wall-spotlight")).to_have_attribute(
            "data-image-id", str(second["id"])
        )
        await expect(wall_tiles(wall)).to_have_count(1)

        # Pause uploads: the API refuses them, the phone and the wall say so.
        uploads = host.get_by_role("switch", name="Accept new photos")
        await uploads.click()
        await expect(uploads).to_have_attribute("aria-checked", "false")
        await expect(host.get_by_test_id("room-badges")).to_contain_text("Uploads paused")
        await expect(phone.get_by_test_id("uploads-paused")).to_contain_text(
            "paused uploads", timeout=LIVE_TIMEOUT_MS
        )
        await expect(wall.locator("#wall-invite")).to_have_text("Uploads are paused for now")
        refused = await upload(http, room, guest, name="rocket")
        assert refused.response.status_code == 409, refused.response.text
        assert refused.response.json()["error"]["code"] == "uploads_paused"
        await screenshot(host, "host-uploads-paused", full_page=True)
        await screenshot(wall, "wall-uploads-paused")
        await uploads.click()
        await expect(phone.get_by_test_id("uploads-paused")).to_be_hidden(timeout=LIVE_TIMEOUT_MS)
        resumed = await upload_ok(http, room, guest, name="rocket")
        await expect(card(wall, resumed["id"])).to_be_visible(timeout=LIVE_TIMEOUT_MS)

        # The settings form: a wrong passcode is explained; title, limit and passcode saved.
        form = host.locator("#settings-form")
        await form.get_by_label("Passcode").fill("abc")
        await form.get_by_role("button", name="Save changes").click()
        await expect(form.get_by_label("Passcode")).to_have_attribute("aria-invalid", "true")
        await expect(form.locator("#error-passcode")).to_contain_text("4 to 64 characters")
        await expect(form.get_by_label("Passcode")).to_be_focused()
        await form.get_by_label("Title").fill("Lea's big farewell")
        await form.get_by_label("Photos per guest").fill("5")
        await form.get_by_label("Passcode").fill("tulip42")
        await form.get_by_role("button", name="Save changes").click()
        await expect(host.get_by_role("status").filter(has_text="Settings saved")).to_be_visible()
        await expect(host.get_by_test_id("room-title")).to_have_text("Lea's big farewell")
        await expect(host.get_by_test_id("passcode-value")).to_have_text("tulip42")
        await expect(host.get_by_test_id("room-badges")).to_contain_text("Passcode")
        await expect(wall.locator("#wall-title")).to_have_text(
            "Lea's big farewell", timeout=LIVE_TIMEOUT_MS
        )
        stored = await host_view(http, room)
        assert stored["title"] == "Lea's big farewell"
        assert stored["max_uploads_per_guest"] == 5
        assert stored["passcode"] == "tulip42"
        assert stored["passcode_required"] is True
        await expect(form.get_by_role("button", name="Save changes")).to_be_disabled()
        await screenshot(host, "host-settings-saved", full_page=True)

        # Close the room (after confirming): no more uploads, photos stay on the wall.
        await host.get_by_role("button", name="Close room").click()
        dialog = host.get_by_test_id("confirm-dialog")
        await expect(dialog).to_contain_text("Close this room?")
        await dialog.get_by_test_id("confirm-button").click()
        await expect(host.get_by_test_id("closed-banner")).to_be_visible()
        await expect(host.get_by_role("switch", name="Blank the wall")).to_be_disabled()
        await expect(host.get_by_role("button", name="Close room")).to_be_hidden()
        await expect(host.get_by_test_id("room-badges")).to_contain_text("Closed")
        await expect(wall.get_by_test_id("wall-closed")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        await expect(wall.get_by_test_id("wall-closed")).to_contain_text("Closed")
        await expect(wall_tiles(wall)).to_have_count(2)
        await expect(wall.get_by_test_id("qr")).to_be_hidden()
        await expect(phone.get_by_test_id("room-closed")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        closed = await upload(http, room, guest, name="astronaut")
        assert closed.response.status_code == 409, closed.response.text
        assert closed.response.json()["error"]["code"] == "room_closed"
        assert (await host_view(http, room))["closed_at"] is not None
        await screenshot(host, "host-room-closed", full_page=True)
        await screenshot(wall, "wall-room-closed")

        for context in (host_context, wall_context, phone.context):
            await context.close()
    console.assert_clean()


async def test_host_requires_a_join_and_sets_a_storage_quota(
    live_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Open house")
        host_context = await new_context(browser, viewport=LAPTOP)
        await set_host_key(host_context, room)
        host = await open_host(console.watch(await host_context.new_page(), "host"), room)

        # The switch makes uploads need a join: an anonymous upload is refused, a guest's not.
        require_join = host.get_by_role("switch", name="Guests must join to share")
        await expect(require_join).to_have_attribute("aria-checked", "false")
        await require_join.click()
        await expect(require_join).to_have_attribute("aria-checked", "true")
        await expect(
            host.get_by_role("status").filter(has_text="Only guests who joined")
        ).to_be_visible()
        assert (await host_view(http, room))["require_join"] is True
        anonymous = await http.post(
            f"/api/rooms/{room['token']}/images",
            files={"file": ("a.jpg", make_image_bytes("jpeg", size=(320, 240)))},
        )
        assert anonymous.status_code == 401, anonymous.text
        assert anonymous.json()["error"]["code"] == "join_required"
        guest = await join(http, room, "Tom")
        await upload_ok(http, room, guest, name="coffee")

        # The storage quota, typed in megabytes, is stored in bytes; bad input is explained.
        form = host.locator("#settings-form")
        storage = form.get_by_label("Storage for the room's photos (MB)")
        await storage.fill("1.5")
        await form.get_by_role("button", name="Save changes").click()
        await expect(form.locator("#error-max_bytes")).to_contain_text("whole number")
        await storage.fill("250")
        await form.get_by_role("button", name="Save changes").click()
        await expect(host.get_by_role("status").filter(has_text="Settings saved")).to_be_visible()
        assert (await host_view(http, room))["max_bytes"] == 250_000_000
        await host.reload()
        await expect(host.get_by_label("Storage for the room's photos (MB)")).to_have_value("250")
        await expect(
            host.get_by_role("switch", name="Guests must join to share")
        ).to_have_attribute("aria-checked", "true")
        await screenshot(host, "host-room-limits", full_page=True)
    console.assert_clean()


async def test_host_originals_switches_reach_the_guest_page(
    live_server: LiveServer, browser: Browser
) -> None:
    """The host asks for smaller photos and keeps locations; an open guest page says both at
    once, and a phone on a slow connection makes photos smaller without being asked."""
    console = ConsoleLog()
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Garden party")
        host_context = await new_context(browser, viewport=LAPTOP)
        await set_host_key(host_context, room)
        host = await open_host(console.watch(await host_context.new_page(), "host"), room)
        phone = await open_phone(browser, room, console)
        hint = phone.get_by_test_id("downscale-hint")
        await expect(hint).to_have_text("Photos are sent at full size.")
        await expect(phone.get_by_test_id("downscale-input")).not_to_be_checked()

        smaller = host.get_by_role("switch", name="Ask guests for smaller photos")
        await expect(smaller).to_have_attribute("aria-checked", "false")
        await smaller.click()
        await expect(smaller).to_have_attribute("aria-checked", "true")
        await expect(hint).to_have_text("Photos are made smaller because the host asked.")
        await expect(phone.get_by_test_id("downscale-input")).to_be_checked()

        location = host.get_by_role("switch", name="Keep photo locations")
        await location.click()
        await expect(location).to_have_attribute("aria-checked", "true")
        await expect(phone.get_by_test_id("location-hint")).to_have_text(
            "Photos keep their location for the host."
        )
        view = await host_view(http, room)
        assert (view["downscale_uploads"], view["keep_location"]) == (True, True)
        await expect(host.get_by_test_id("download-all-hint")).to_contain_text("capture time")

        # A slow connection (Network Information API as Chromium on Android reports it).
        await smaller.click()
        await expect(smaller).to_have_attribute("aria-checked", "false")
        slow_context = await new_context(
            browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
        )
        await slow_context.add_init_script(
            "Object.defineProperty(navigator, 'connection', {configurable: true, value:"
            " Object.assign(new EventTarget(), {effectiveType: '3g', saveData: false})});"
        )
        slow = console.watch(await slow_context.new_page(), "slow phone")
        await slow.goto(room["join_url"])
        await expect(slow.get_by_test_id("downscale-hint")).to_have_text(
            "Photos are made smaller because your connection is slow."
        )
        await expect(slow.get_by_test_id("downscale-input")).to_be_checked()
        await expect(hint).to_have_text("Photos are sent at full size.")

        for context in (host_context, phone.context, slow_context):
            await context.close()
    console.assert_clean()
