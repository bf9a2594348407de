"""Moderation from the host page: a room created with "approve photos first" holds guests'
uploads in the host's queue, off the wall, until the host approves them; rejected photos never
reach the wall. A real host page (made by the landing page), a real 1080p wall, guests over the
HTTP API. The wall runs on Playwright's fake clock, paused, so the approved photos queue on it
deterministically and their turns are run through, not waited for; the host page's clock is
fake too, flowing with real time, and is run through the 8 s of its "Undo" toast
(tests/e2e/test_host_busy_night.py checks that nothing is sent before the toast ends).
"""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Browser, expect

from tests.conftest import LiveServer
from tests.e2e.host_wall_session import (
    FULL_HD,
    LAPTOP,
    LIVE_TIMEOUT_MS,
    ConsoleLog,
    api_client,
    join,
    new_context,
    open_wall,
    pause_clock,
    record_wall_images,
    run_clock_until,
    screenshot,
    upload,
    wall_ever_loaded,
    wall_ever_showed,
    wall_tiles,
)


def queue_item(page: Any, image_id: int) -> Any:
    return page.locator(f'[data-testid="pending-image"][data-image-id="{image_id}"]')


async def test_host_approves_and_rejects_from_the_queue_while_the_wall_waits(
    slow_heartbeat_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    host_context = await new_context(browser, viewport=LAPTOP)
    host = console.watch(await host_context.new_page(), "host")
    await host.clock.install()

    # The host creates the room with moderation on, from the landing page's "More options".
    await host.goto(slow_heartbeat_server.base_url + "/")
    await host.get_by_label("What's the occasion?").fill("Gala dinner")
    await host.get_by_text("More options").click()
    await host.get_by_label("Approve photos before they're shown").check()
    await host.get_by_role("button", name="Create room", exact=True).click()
    await host.wait_for_url(re.compile(r"/r/[^/]+/host$"))
    await expect(host.locator("#live")).to_have_attribute("data-state", "live")
    moderation = host.get_by_role("switch", name="Approve photos first")
    await expect(moderation).to_have_attribute("aria-checked", "true")
    queue = host.get_by_test_id("approval-queue")
    await expect(queue).to_be_visible()
    await expect(queue).to_contain_text("Nothing is waiting")
    await host.get_by_test_id("key-saved").click()
    room: dict[str, Any] = await host.evaluate(
        "() => JSON.parse(document.getElementById('room-data').textContent)"
    )
    assert room["moderation"] == "approve"

    wall_context = await new_context(browser, viewport=FULL_HD)
    wall = console.watch(await wall_context.new_page(), "wall")
    await open_wall(wall, room, fake_clock=True)
    await record_wall_images(wall)
    await pause_clock(wall)

    async with api_client(slow_heartbeat_server.base_url) as http:
        guest = await join(http, room, "Mira")

        # An upload waits in the host's queue and does not reach the wall.
        first = await upload(http, room, guest, name="rocket", caption="Fireworks!")
        assert first.response.status_code == 201, first.response.text
        assert first.image["status"] == "pending"
        pending = queue_item(host, first.image["id"])
        await expect(pending).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        await expect(pending).to_contain_text("Fireworks!")
        await expect(pending).to_contain_text("Mira")
        await expect(host.get_by_test_id("queue-count")).to_have_text("1")
        await expect(pending.locator("img")).to_have_attribute("src", first.image["thumb_url"])
        await expect(wall_tiles(wall)).to_have_count(0)
        await expect(wall.locator("#wall")).to_have_attribute("data-image-count", "0")
        await expect(wall.get_by_test_id("wall-empty")).to_be_visible()
        await screenshot(host, "host-moderation-queue", full_page=True)
        await screenshot(wall, "wall-moderation-nothing-approved")

        # Approve: the photo reaches the wall live, and the host's own grid.
        await pending.get_by_role("button", name=re.compile("^Approve")).click()
        await expect(pending).to_have_count(0)
        spotlight = wall.get_by_test_id("wall-spotlight")
        await expect(spotlight).to_have_attribute(
            "data-image-id", str(first.image["id"]), timeout=LIVE_TIMEOUT_MS
        )
        await expect(wall_tiles(wall)).to_have_count(1)
        await expect(spotlight).to_contain_text("Fireworks!")
        await expect(
            host.locator(f'#gallery [data-testid="image"][data-image-id="{first.image["id"]}"]')
        ).to_be_visible()
        await expect(queue).to_contain_text("Nothing is waiting")

        # Reject: gone from the queue, never on the wall.
        second = await upload(http, room, guest, name="chelsea", caption="Not this one")
        assert second.response.status_code == 201, second.response.text
        rejected = queue_item(host, second.image["id"])
        await expect(rejected).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        # The reject is sent once its "Undo" toast expires (8 s of the host page's clock).
        async with host.expect_response(
            lambda r: r.url.endswith(f"/images/{second.image['id']}/reject"),
            timeout=LIVE_TIMEOUT_MS,
        ) as answer:
            await rejected.get_by_role("button", name=re.compile("^Reject")).click()
            await expect(rejected).to_have_count(0)
            await expect(host.get_by_test_id("undo-toast")).to_be_visible()
            await host.clock.run_for(8_000)
        assert (await answer.value).ok
        listing = await http.get(
            f"/api/rooms/{room['token']}/pending",
            headers={"Authorization": f"Bearer {await host_key(host, room)}"},
        )
        assert listing.json()["items"] == []

        # Approve all: two more waiting photos go to the wall together.
        batch = [await upload(http, room, guest, name=n) for n in ("astronaut", "coffee")]
        for sent in batch:
            assert sent.response.status_code == 201, sent.response.text
            await expect(queue_item(host, sent.image["id"])).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        await expect(host.get_by_test_id("queue-count")).to_have_text("2")
        await screenshot(host, "host-moderation-two-waiting", full_page=True)
        # A host on a phone: the queue and its buttons fit the screen.
        await host.set_viewport_size({"width": 390, "height": 844})
        await host.evaluate("() => window.scrollTo(0, 0)")
        widths = await host.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert widths[0] <= widths[1], f"horizontal overflow on a phone: {widths}"
        await expect(queue.get_by_role("button", name="Approve all")).to_be_in_viewport()
        await screenshot(host, "host-phone-moderation-queue")
        await host.set_viewport_size(LAPTOP)
        await host.get_by_test_id("approve-all").click()
        await expect(host.locator('[data-testid="pending-image"]')).to_have_count(0)
        await expect(wall_tiles(wall)).to_have_count(3, timeout=LIVE_TIMEOUT_MS)
        # On the paused clock the first photo's turn has not ended: both wait behind it.
        await expect(spotlight).to_have_attribute("data-queue", "2", timeout=LIVE_TIMEOUT_MS)
        # Their turns run through, until the last one's layer is the active one (for the
        # screenshot: it is made so on an animation frame, the clock's too).
        await run_clock_until(
            wall,
            "([last]) => { const f = document.getElementById('spotlight');"
            " const active = f.querySelector('.spot-layer.is-active');"
            " return f.dataset.imageId === String(last) && f.dataset.queue === '0'"
            " && active !== null && active.dataset.imageId === String(last); }",
            [batch[-1].image["id"]],
            step_ms=250,
        )
        await screenshot(wall, "wall-moderation-approved")

    # Compared by picture, not id: SQLite may give a later upload the rejected photo's id.
    pictures = await wall_ever_loaded(wall)
    assert second.image["url"] not in pictures, "a rejected photo appeared on the wall"
    assert second.image["thumb_url"] not in pictures, "a rejected photo appeared on the wall"
    approved = [first.image, *(sent.image for sent in batch)]
    assert {image["thumb_url"] for image in approved} <= pictures
    assert await wall_ever_showed(wall) == {image["id"] for image in approved}
    for context in (host_context, wall_context):
        await context.close()
    console.assert_clean()


async def host_key(page: Any, room: dict[str, Any]) -> str:
    """The host key the landing page left in the host's localStorage."""
    key: str = await page.evaluate(
        "token => localStorage.getItem('imageshark.host.' + token)", room["token"]
    )
    assert key
    return key
