"""The wall's QR code, read back from screenshots: at every size, on a 1080p and a 4K wall with
photos, it decodes to the room's join URL, it is drawn in whole device pixels per module (at
least 12 at the default "medium" on 1080p) and it keeps its size when the first photo arrives.
"""

from __future__ import annotations

import io
from typing import Any

import zxingcpp
from PIL import Image
from playwright.async_api import Browser, Page, expect

from tests.conftest import LiveServer
from tests.e2e.guest_session import patch_room
from tests.e2e.host_wall_session import (
    FULL_HD,
    LIVE_TIMEOUT_MS,
    UHD_4K,
    ConsoleLog,
    api_client,
    create_room,
    join,
    new_context,
    open_wall,
    screenshot,
    upload_ok,
)

QR = '[data-testid="qr"]'


async def qr_laid_out(
    page: Page, modules: int, screen_height: int, *, min_module_px: float = 0
) -> float:
    """Wait until the wall's QR image is loaded and laid out for a ``screen_height`` px tall
    window at a whole number of pixels per module, at least ``min_module_px`` (the window
    grows in steps and the wall re-lays out at each: wait for the last); returns its width in
    CSS pixels."""
    await page.wait_for_function(
        """([modules, height, minPx]) => {
          const img = document.querySelector('[data-testid="qr"]');
          const perModule = Number(document.getElementById('wall').dataset.qrModulePx);
          const width = img.getBoundingClientRect().width;
          return window.innerHeight === height && img.complete && img.naturalWidth > 0
            && perModule >= Math.max(minPx, 1) && Math.abs(width - perModule * modules) < 0.01;
        }""",
        arg=[modules, screen_height, min_module_px],
        timeout=LIVE_TIMEOUT_MS,
    )
    box = await page.locator(QR).bounding_box()
    assert box is not None
    return float(box["width"])


async def decode_wall(page: Page, name: str) -> list[str]:
    """Screenshot the whole wall (saved as ``name``) and decode every QR code in it."""
    await screenshot(page, name)
    png = await page.screenshot(animations="disabled")
    with Image.open(io.BytesIO(png)) as image:
        found = zxingcpp.read_barcodes(image.convert("L"))
    return [code.text for code in found if code.format == zxingcpp.BarcodeFormat.QRCode]


async def test_wall_qr_decodes_at_every_size_with_whole_pixel_modules(
    live_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    measured: dict[tuple[str, str], float] = {}
    async with api_client(live_server.base_url) as http:
        for size in ("small", "medium", "large"):
            room: dict[str, Any] = await create_room(http, f"QR {size}")
            modules = int(room["qr_modules"])
            # The short join URL, upper-cased (web/rooms/qr.py), is a version 2 code: 25 + 2 x 4.
            assert modules == 33, "the upper-cased short join URL is a version 2 code"
            encoded = room["join_url"].upper()
            await patch_room(http, room, wall_qr_size=size)
            context = await new_context(browser, viewport=FULL_HD, reduced_motion="reduce")
            wall = await open_wall(console.watch(await context.new_page(), f"wall-{size}"), room)
            await expect(wall.locator("#wall")).to_have_attribute("data-state", "empty")
            await expect(wall.locator("#wall")).to_have_attribute("data-qr", size)
            empty_width = await qr_laid_out(wall, modules, FULL_HD["height"])
            await screenshot(wall, f"wall-qr-{size}-empty-1080p")

            guest = await join(http, room, "Noor")
            photo = await upload_ok(http, room, guest, name="coffee")
            await expect(wall.locator("#wall")).to_have_attribute(
                "data-state", "showing", timeout=LIVE_TIMEOUT_MS
            )
            await expect(wall.get_by_test_id("wall-spotlight")).to_have_attribute(
                "data-image-id", str(photo["id"]), timeout=LIVE_TIMEOUT_MS
            )
            hd_width = await qr_laid_out(wall, modules, FULL_HD["height"])
            assert hd_width == empty_width, f"{size}: the QR changed size when a photo arrived"
            assert await decode_wall(wall, f"wall-qr-{size}-1080p") == [encoded]
            measured[(size, "1080p")] = hd_width / modules

            await wall.set_viewport_size(UHD_4K)
            uhd_width = await qr_laid_out(
                wall, modules, UHD_4K["height"], min_module_px=2 * hd_width / modules
            )
            assert await decode_wall(wall, f"wall-qr-{size}-4k") == [encoded]
            measured[(size, "4K")] = uhd_width / modules
            await context.close()

        # The host page states the scan distance of each size from what the wall draws: ten
        # times the symbol's width (no quiet zone) on a 1920 px wide, 3 m or 1.43 m screen.
        host_page = await http.get(f"/r/{room['token']}/host")
        assert host_page.status_code == 200
        for size in ("small", "medium", "large"):
            width = measured[(size, "1080p")] * (modules - 8) / 1920
            line = (
                f"{size.capitalize()}: scans from about {width * 30:.1f} m on a 3 m wide "
                f"projection, {width * 14.3:.1f} m on a 65″ TV"
            )
            assert line in host_page.text, line

    print("px per module:", {f"{size} {screen}": px for (size, screen), px in measured.items()})
    for px in measured.values():
        assert px == int(px), f"modules must be whole pixels: {measured}"
    assert measured[("medium", "1080p")] >= 12, measured
    assert (
        measured[("small", "1080p")] < measured[("medium", "1080p")] < measured[("large", "1080p")]
    ), measured
    for size in ("small", "medium", "large"):
        assert measured[(size, "4K")] == 2 * measured[(size, "1080p")], measured
    console.assert_clean()
