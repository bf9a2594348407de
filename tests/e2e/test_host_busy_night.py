"""The host page on a busy night: the urgent things first (open the wall, the approval queue
with large previews, the photos with delete), destructive actions that need a deliberate
confirmation, and a reject that can be undone for a few seconds. Real server, real Chromium on
a 1440x900 laptop and a 390x844 phone, guests over the HTTP API.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.conftest import LiveServer
from tests.e2e.guest_session import PHONE_390
from tests.e2e.host_wall_session import (
    LIVE_TIMEOUT_MS,
    api_client,
    create_room,
    host_headers,
    host_view,
    join,
    new_context,
    open_host,
    pause_clock,
    run_clock_until,
    screenshot,
    set_host_key,
    upload_ok,
)
from tests.polling import poll_until

LAPTOP_1440 = {"width": 1440, "height": 900}
REJECT_UNDO_MS = 8_000  # how long a reject can be undone (static/js/host-queue.js)


async def host_page(
    browser: Browser,
    room: dict[str, Any],
    viewport: Any,
    *,
    fake_clock: bool = False,
    **options: Any,
) -> Page:
    """A host page in its own context, open and live; ``fake_clock``: on Playwright's fake
    clock, installed before the page loads (it runs with real time until paused)."""
    context = await new_context(browser, viewport=viewport, **options)
    await set_host_key(context, room)
    page = await context.new_page()
    if fake_clock:
        await page.clock.install()
    return await open_host(page, room)


async def top_of(page: Page, selector: str) -> float:
    """The element's top edge in page coordinates (CSS px from the top of the document)."""
    top: float = await page.evaluate(
        "(sel) => document.querySelector(sel).getBoundingClientRect().top + window.scrollY",
        selector,
    )
    return top


async def settled_box(image: Any) -> dict[str, float] | None:
    """The bounding box of a queue item's preview ``image`` (a locator) once the item's
    pop-in animation has ended: it scales in from 92 %, so a box read during it is a few
    pixels short."""
    await image.evaluate(
        "(el) => Promise.all(el.closest('.queue-item').getAnimations().map((a) => a.finished))"
    )
    box: dict[str, float] | None = await image.bounding_box()
    return box


async def pending_ids(http: Any, room: dict[str, Any]) -> list[int]:
    response = await http.get(f"/api/rooms/{room['token']}/pending", headers=host_headers(room))
    assert response.status_code == 200, response.text
    return [image["id"] for image in response.json()["items"]]


def queue_item(page: Page, image_id: int) -> Any:
    return page.locator(f'[data-testid="pending-image"][data-image-id="{image_id}"]')


async def test_urgent_things_come_first_on_a_laptop_and_a_phone(
    live_server: LiveServer, browser: Browser
) -> None:
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Wedding night", moderation="approve")
        guest = await join(http, room, "Mira")
        for name in ("rocket", "coffee"):
            await upload_ok(http, room, guest, name=name)

        # Laptop: "Open the wall" and "Copy wall link" inside the first screen, large previews.
        laptop = await host_page(
            browser, room, LAPTOP_1440, permissions=["clipboard-read", "clipboard-write"]
        )
        await laptop.evaluate("() => window.scrollTo(0, 0)")
        await expect(laptop.get_by_test_id("wall-link")).to_be_in_viewport(ratio=1)
        await expect(laptop.get_by_test_id("copy-wall-link")).to_be_in_viewport(ratio=1)
        wall_box = await laptop.get_by_test_id("wall-link").bounding_box()
        assert wall_box and wall_box["y"] + wall_box["height"] <= LAPTOP_1440["height"]
        await expect(laptop.locator('[data-testid="pending-image"]')).to_have_count(2)
        preview = await settled_box(laptop.locator(".queue-thumb img").first)
        assert preview and preview["width"] >= 240 and preview["height"] >= 240, preview
        print(f"laptop 1440x900: open-wall y={wall_box['y']:.0f}, preview {preview['width']:.0f}px")

        # "Copy wall link" copies the wall's absolute address and says so.
        await laptop.get_by_test_id("copy-wall-link").click()
        await expect(laptop.get_by_test_id("copy-wall-status")).to_contain_text("Copied")
        copied = await laptop.evaluate("() => navigator.clipboard.readText()")
        assert copied == live_server.base_url + room["wall_url"] or copied == room["wall_url"]
        await screenshot(laptop, "host-busy-night-laptop")
        await laptop.context.close()

        # Phone: previews nearly full width; the photo list starts within two screens.
        phone = await host_page(browser, room, PHONE_390, is_mobile=True, has_touch=True)
        await expect(phone.locator('[data-testid="pending-image"]')).to_have_count(2)
        preview = await settled_box(phone.locator(".queue-thumb img").first)
        assert preview and preview["width"] >= PHONE_390["width"] * 0.75, preview
        photos_top = await top_of(phone, "#gallery")
        wall_top = await top_of(phone, '[data-testid="wall-link"]')
        print(f"phone 390x844: photo list y={photos_top:.0f}, open-wall y={wall_top:.0f}")
        assert photos_top < 2 * PHONE_390["height"], photos_top
        assert wall_top < PHONE_390["height"], wall_top
        widths = await phone.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert widths[0] <= widths[1], f"horizontal overflow on a phone: {widths}"
        await screenshot(phone, "host-busy-night-phone")
        await screenshot(phone, "host-busy-night-phone-full", full_page=True)
        await phone.context.close()


async def test_close_room_dialog_starts_on_cancel_and_enter_twice_keeps_the_room_open(
    live_server: LiveServer, browser: Browser
) -> None:
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Conference")
        host = await host_page(browser, room, LAPTOP_1440)
        await host.get_by_test_id("close-room").click()
        dialog = host.get_by_test_id("confirm-dialog")
        await expect(dialog).to_be_visible()
        await expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        await expect(dialog.get_by_test_id("confirm-button")).to_have_text("Close room for good")
        await host.keyboard.press("Enter")
        await expect(dialog).to_have_count(0)
        await expect(host.get_by_test_id("close-room")).to_be_focused()
        # The second Enter lands on "Close room" again: it opens the dialog, focused on Cancel.
        await host.keyboard.press("Enter")
        await expect(dialog).to_be_visible()
        await expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        await host.keyboard.press("Enter")
        await expect(dialog).to_have_count(0)
        assert (await host_view(http, room))["closed"] is False
        await expect(host.get_by_test_id("closed-banner")).to_be_hidden()

        # The explicit button does close it.
        await host.get_by_test_id("close-room").click()
        await dialog.get_by_role("button", name="Close room for good").click()
        await expect(host.get_by_test_id("closed-banner")).to_be_visible()
        assert (await host_view(http, room))["closed"] is True
        await host.context.close()


async def test_delete_photo_needs_confirmation(live_server: LiveServer, browser: Browser) -> None:
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Birthday")
        guest = await join(http, room, "Tom")
        image = await upload_ok(http, room, guest, name="chelsea")
        host = await host_page(browser, room, PHONE_390, is_mobile=True, has_touch=True)
        tile = host.locator(f'#gallery [data-testid="image"][data-image-id="{image["id"]}"]')
        await expect(tile).to_be_visible()
        delete = tile.get_by_role("button", name=re.compile("^Delete"))
        await delete.click()
        dialog = host.get_by_test_id("confirm-dialog")
        await expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        await host.keyboard.press("Enter")
        await expect(dialog).to_have_count(0)
        listing = await http.get(f"/api/rooms/{room['token']}/images", headers=host_headers(room))
        assert [i["id"] for i in listing.json()["items"]] == [image["id"]]
        await expect(tile).to_be_visible()

        await delete.click()
        await dialog.get_by_test_id("confirm-button").click()
        await expect(tile).to_have_count(0)
        listing = await http.get(f"/api/rooms/{room['token']}/images", headers=host_headers(room))
        assert listing.json()["items"] == []
        await host.context.close()


async def test_reject_can_be_undone_and_is_sent_when_the_toast_expires(
    slow_heartbeat_server: LiveServer, browser: Browser
) -> None:
    """The host page runs on Playwright's fake clock, paused: the undo window cannot run out
    before Undo is clicked, and is then run through (all 8 s of it) instead of waited for."""
    async with api_client(slow_heartbeat_server.base_url) as http:
        room = await create_room(http, "Gala", moderation="approve")
        guest = await join(http, room, "Ana")
        kept = await upload_ok(http, room, guest, name="rocket")
        dropped = await upload_ok(http, room, guest, name="coffee")
        host = await host_page(browser, room, LAPTOP_1440, fake_clock=True)
        rejects: list[str] = []
        host.on("request", lambda r: rejects.append(r.url) if r.url.endswith("/reject") else None)
        await pause_clock(host)

        # Reject, then Undo: the photo comes back, the server never hears of it.
        item = queue_item(host, kept["id"])
        await item.get_by_role("button", name=re.compile("^Reject")).click()
        await expect(item).to_have_count(0)
        toast = host.get_by_test_id("undo-toast")
        await expect(toast).to_be_visible()
        await toast.get_by_role("button", name="Undo").click()
        await expect(item).to_be_visible()
        await expect(toast).to_have_count(0)
        assert kept["id"] in await pending_ids(http, room)

        # Reject without undo: gone at once, rejected on the server when the toast expires.
        other = queue_item(host, dropped["id"])
        async with host.expect_response(
            lambda r: r.url.endswith(f"/images/{dropped['id']}/reject"),
            timeout=LIVE_TIMEOUT_MS,
        ) as answer:
            await other.get_by_role("button", name=re.compile("^Reject")).click()
            await expect(other).to_have_count(0)
            await expect(toast).to_be_visible()
            assert rejects == [], "nothing is sent while the toast is up"
            ran = await run_clock_until(
                host, "() => !document.querySelector('[data-testid=\"undo-toast\"]')"
            )
            assert ran >= REJECT_UNDO_MS, f"sent after {ran} ms of the page's clock"
        assert (await answer.value).ok
        await expect(toast).to_have_count(0)
        assert await pending_ids(http, room) == [kept["id"]]
        assert rejects == [
            slow_heartbeat_server.base_url
            + f"/api/rooms/{room['token']}/images/{dropped['id']}/reject"
        ]
        await expect(item).to_be_visible()
        await host.context.close()


async def test_a_pending_reject_is_sent_when_the_page_goes_away(
    live_server: LiveServer, browser: Browser
) -> None:
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Gala", moderation="approve")
        guest = await join(http, room, "Ana")
        image = await upload_ok(http, room, guest, name="rocket")
        host = await host_page(browser, room, LAPTOP_1440)
        item = queue_item(host, image["id"])
        await item.get_by_role("button", name=re.compile("^Reject")).click()
        await expect(item).to_have_count(0)
        await host.goto(live_server.base_url + "/")

        # Sent with keepalive from pagehide: it reaches the server though the page is gone,
        # which announces nothing to wait on: the test's own client asks the server until the
        # queue is empty (an in-page polling fetch once passed the wait while the reject was
        # still on its way).
        async def queue_empty() -> bool:
            return await pending_ids(http, room) == []

        await poll_until(queue_empty, deadline=LIVE_TIMEOUT_MS / 1000, what="reject received")
        assert await pending_ids(http, room) == []
        await host.context.close()
