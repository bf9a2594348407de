"""The wall follows the host's wall settings live: blanking, spotlight and grid, QR size,
captions; it cycles through the photos when nothing new arrives (every 10 s, its default) and
a new photo always comes first. The walls run on Playwright's fake clock, paused while the idle
cycle is checked, and the tests run it through the cycle's waits instead of sitting them out;
the host pages keep real time.
"""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect

from tests.conftest import LiveServer
from tests.e2e.host_wall_session import (
    FULL_HD,
    LAPTOP,
    LIVE_TIMEOUT_MS,
    UHD_4K,
    ConsoleLog,
    api_client,
    create_room,
    host_view,
    join,
    new_context,
    open_host,
    open_wall,
    pause_clock,
    run_clock_until,
    screenshot,
    set_host_key,
    upload_ok,
    wall_tiles,
)

PHOTOS = ("coffee", "rocket", "chelsea", "astronaut")
CYCLE_MS = 10_000  # the wall's default idle cycle
# Page functions, called with an image id: whether the spotlight shows it, and whether its
# layer is the active (faded-in) one.
SHOWN_IS = "(id) => document.getElementById('spotlight').dataset.imageId === String(id)"
# The strip marks the photo the spotlight turns to at once, before its picture is decoded (which
# takes real time while the clock runs on): what times the idle cycle.
CHOSEN_IS = '(id) => document.querySelector(`#wall .is-current[data-image-id="${id}"]`) !== null'
PAGE_IS = "(label) => document.getElementById('mosaic-page').textContent === label"
ACTIVE_LAYER_IS = """(id) => {
  const active = document.querySelector('#spotlight .spot-layer.is-active');
  return active !== null && active.dataset.imageId === String(id);
}"""


async def wait_for_grid(
    page: Page, label: str, ids: list[int], *, min_tile_width: float = 0
) -> None:
    """Run the page's paused clock on until the wall's grid shows page ``label`` ("1 / 2")
    holding exactly ``ids`` in that order, its tiles at least ``min_tile_width`` CSS pixels
    wide, all read in one go (the page may turn, and a resized window may re-lay the grid out,
    at any moment); at once if it already does."""
    await run_clock_until(
        page,
        """([label, ids, minWidth]) => {
          const tiles = [...document.querySelectorAll('#mosaic [data-testid="image"]')];
          const shown = tiles.map((tile) => Number(tile.dataset.imageId));
          return document.getElementById('mosaic-page').textContent === label
            && JSON.stringify(shown) === JSON.stringify(ids)
            && tiles.every((tile) => tile.getBoundingClientRect().width >= minWidth);
        }""",
        [label, ids, min_tile_width],
        step_ms=250,
        limit_ms=30_000,
    )


async def box_width(page: Page, selector: str) -> float:
    box = await page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not laid out"
    return float(box["width"])


async def test_host_drives_the_wall_live_blank_captions_qr_and_cycling(
    slow_heartbeat_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    async with api_client(slow_heartbeat_server.base_url) as http:
        room = await create_room(http, "Summer party")
        guest = await join(http, room, "Noor")
        images = [
            await upload_ok(http, room, guest, name=name, caption=f"{name} caption")
            for name in PHOTOS[:3]
        ]

        host_context = await new_context(browser, viewport=LAPTOP)
        await set_host_key(host_context, room)
        host = await open_host(console.watch(await host_context.new_page(), "host"), room)
        other_tab = await open_host(console.watch(await host_context.new_page(), "host-2"), room)
        wall_context = await new_context(browser, viewport=FULL_HD)
        wall = await open_wall(
            console.watch(await wall_context.new_page(), "wall"), room, fake_clock=True
        )
        await pause_clock(wall)

        spotlight = wall.get_by_test_id("wall-spotlight")
        # The newest first: the clock is paused, so the idle cycle cannot have moved it on.
        await expect(spotlight).to_have_attribute(
            "data-image-id", str(images[-1]["id"]), timeout=LIVE_TIMEOUT_MS
        )
        await expect(wall_tiles(wall)).to_have_count(3)
        # Its layer is made the active one on an animation frame (the clock's).
        await run_clock_until(wall, ACTIVE_LAYER_IS, images[-1]["id"], step_ms=16)
        await expect(spotlight.locator(".spot-layer.is-active .spot-caption")).to_have_text(
            re.compile(r"^chelsea captionShared by Noor")
        )
        await screenshot(wall, "wall-spotlight")

        # Idle: the spotlight walks to the next older photo by itself, then on, each after a
        # full idle cycle.
        await run_clock_until(wall, CHOSEN_IS, images[1]["id"], step_ms=250)
        ran = await run_clock_until(wall, CHOSEN_IS, images[0]["id"], step_ms=250)
        assert ran >= CYCLE_MS - 250, f"moved on after {ran} ms of the page's clock"
        await run_clock_until(wall, SHOWN_IS, images[0]["id"], step_ms=16)
        await run_clock_until(wall, ACTIVE_LAYER_IS, images[0]["id"], step_ms=16)
        await screenshot(wall, "wall-spotlight-cycled")
        # The rest follows the host's changes live, on real time again.
        await wall.clock.resume()
        # A new photo takes the spotlight at once.
        newest = await upload_ok(http, room, guest, name=PHOTOS[3], caption="Just arrived")
        await expect(spotlight).to_have_attribute(
            "data-image-id", str(newest["id"]), timeout=LIVE_TIMEOUT_MS
        )
        await expect(spotlight).to_contain_text("Just arrived")

        # Captions off: no caption or name on the wall; back on: there again.
        captions = host.get_by_role("switch", name="Captions and names")
        await captions.click()
        await expect(wall.locator("#wall")).to_have_attribute("data-captions", "off")
        await expect(wall.locator('[data-testid="caption"]:visible')).to_have_count(0)
        assert (await host_view(http, room))["wall_captions"] is False
        # The host's other tab follows.
        await expect(other_tab.get_by_role("switch", name="Captions and names")).to_have_attribute(
            "aria-checked", "false", timeout=LIVE_TIMEOUT_MS
        )
        await screenshot(wall, "wall-captions-off")
        await captions.click()
        await expect(wall.locator('[data-testid="caption"]:visible').first).to_be_visible()

        # QR code size: medium → large → small → off.
        qr_sizes = host.get_by_test_id("wall-qr-size")
        medium = await box_width(wall, ".wall-qr-card")
        await qr_sizes.get_by_text("Large", exact=True).click()
        await expect(wall.locator("#wall")).to_have_attribute("data-qr", "large")
        large = await box_width(wall, ".wall-qr-card")
        await screenshot(wall, "wall-qr-large")
        await qr_sizes.get_by_text("Small", exact=True).click()
        await expect(wall.locator("#wall")).to_have_attribute("data-qr", "small")
        small = await box_width(wall, ".wall-qr-card")
        assert small < medium < large, (small, medium, large)
        await screenshot(wall, "wall-qr-small")
        await qr_sizes.get_by_text("Off", exact=True).click()
        await expect(wall.get_by_test_id("qr")).to_be_hidden()
        await expect(
            other_tab.get_by_test_id("wall-qr-size").get_by_role("radio", name="Off")
        ).to_be_checked(timeout=LIVE_TIMEOUT_MS)
        stage_wide = await box_width(wall, "#stage")
        assert stage_wide > FULL_HD["width"] * 0.9, "without QR code the photo takes the width"
        await screenshot(wall, "wall-qr-off")

        # Blank the wall: only the title on black; then the photos come back.
        blank = host.get_by_role("switch", name="Blank the wall")
        await blank.click()
        await expect(blank).to_have_attribute("aria-checked", "true")
        await expect(wall.get_by_test_id("wall-blank")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        await expect(wall.get_by_test_id("wall-blank")).to_have_text("Summer party")
        await expect(spotlight).to_be_hidden()
        for tile in await wall_tiles(wall).all():
            await expect(tile).to_be_hidden()
        await expect(wall.locator("#wall img:visible")).to_have_count(0)
        await expect(wall.locator("#live")).to_be_hidden()
        await expect(host.get_by_test_id("room-badges")).to_contain_text("Wall blanked")
        await screenshot(wall, "wall-blanked")
        await screenshot(host, "host-wall-blanked")
        await blank.click()
        await expect(wall.get_by_test_id("wall-blank")).to_be_hidden(timeout=LIVE_TIMEOUT_MS)
        await expect(spotlight).to_be_visible()
        await expect(wall_tiles(wall)).to_have_count(4)
        for tile in await wall_tiles(wall).all():
            await expect(tile).to_be_visible()
        await screenshot(wall, "wall-unblanked")

        for context in (host_context, wall_context):
            await context.close()
    console.assert_clean()


async def test_grid_pages_through_the_photos_and_4k_stays_sharp(
    slow_heartbeat_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    async with api_client(slow_heartbeat_server.base_url) as http:
        room = await create_room(http, "Conference 2026", wall_mode="grid")
        guest = await join(http, room, "Sam")
        images = [
            await upload_ok(
                http, room, guest, name=PHOTOS[i % 4], width=480 + 8 * i, caption=f"#{i}"
            )
            for i in range(10)
        ]

        wall_context = await new_context(browser, viewport=FULL_HD, reduced_motion="reduce")
        wall = await open_wall(
            console.watch(await wall_context.new_page(), "wall"), room, fake_clock=True
        )
        await pause_clock(wall)
        grid = wall.get_by_test_id("wall-grid")
        tiles = grid.locator('[data-testid="image"]')
        # At 1080p with the QR code a page holds 3 x 3 photos: the newest nine, newest first.
        first_page = [image["id"] for image in reversed(images[1:])]
        await wait_for_grid(wall, "1 / 2", first_page)
        await expect(wall.get_by_test_id("wall-spotlight")).to_be_hidden()
        await expect(wall.locator("#strip [data-testid='image']")).to_have_count(0)
        # Big tiles use the display rendition, not the 400 px thumbnail.
        srcs = await grid.locator("img").evaluate_all("imgs => imgs.map(img => img.src)")
        displays = {slow_heartbeat_server.base_url + image["url"] for image in images}
        assert srcs and set(srcs) <= displays, srcs
        await screenshot(wall, "wall-grid")

        # Idle: the next page (the oldest photo), then back to the first, a full cycle later.
        await wait_for_grid(wall, "2 / 2", [images[0]["id"]])
        await screenshot(wall, "wall-grid-page-2")
        ran = await run_clock_until(wall, PAGE_IS, "1 / 2", step_ms=250)
        assert ran >= CYCLE_MS - 250, f"turned after {ran} ms of the page's clock"
        await wait_for_grid(wall, "1 / 2", first_page)

        # Reduced motion: the page turns without animating.
        duration = await grid.evaluate("el => getComputedStyle(el).transitionDuration")
        assert all(float(part.rstrip("s")) < 0.01 for part in duration.split(",")), duration

        # A new photo brings the first page back with the newcomer first.
        await wait_for_grid(wall, "2 / 2", [images[0]["id"]])
        newcomer = await upload_ok(http, room, guest, name="rocket", width=900, caption="New!")
        first_page = [newcomer["id"], *first_page[:8]]
        # On the live message alone, no timer (the clock stays where it is until it is there).
        await expect(tiles.first).to_have_attribute(
            "data-image-id", str(newcomer["id"]), timeout=LIVE_TIMEOUT_MS
        )
        await wait_for_grid(wall, "1 / 2", first_page)
        hd_tile = (
            await grid.locator('[data-testid="image"]')
            .nth(1)
            .evaluate("tile => tile.getBoundingClientRect().width")
        )

        # The same wall on a 4K screen: same layout, photos as display renditions.
        # The window grows in steps (width, then height), and each step re-lays the grid out:
        # wait for the layout of the final size, not a measurement of a step on the way.
        await wall.set_viewport_size(UHD_4K)
        await wait_for_grid(wall, "1 / 2", first_page, min_tile_width=1.9 * hd_tile)
        tile_width = await box_width(wall, '[data-testid="wall-grid"] [data-testid="image"]')
        assert tile_width >= 1.9 * hd_tile, f"4K tiles scale with the screen ({tile_width}px)"
        await screenshot(wall, "wall-4k-grid")

        host_context = await new_context(browser, viewport=LAPTOP)
        await set_host_key(host_context, room)
        host = await open_host(console.watch(await host_context.new_page(), "host"), room)
        await host.get_by_test_id("wall-mode").get_by_text("Spotlight", exact=True).click()
        spotlight = wall.get_by_test_id("wall-spotlight")
        await expect(spotlight).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        await expect(tiles).to_have_count(0)
        big = spotlight.locator(".spot-layer.is-active img.spot-img")
        # Its layer is made the active one on an animation frame (the clock's).
        await run_clock_until(
            wall, "() => document.querySelector('#spotlight .spot-layer.is-active') !== null"
        )
        await expect(big).to_be_visible()
        displays = {image["url"] for image in [*images, newcomer]}
        assert await big.get_attribute("src") in displays, "the spotlight shows a display rendition"
        await screenshot(wall, "wall-4k-spotlight")

        for context in (host_context, wall_context):
            await context.close()
    console.assert_clean()
