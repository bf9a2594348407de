"""The whole product in real browsers: a host creates a room, a guest joins from a phone by the
room's QR code and shares a photo, the wall shows it live, the host deletes it everywhere.

Three isolated Chromium contexts (host laptop, phone, 1080p projector) talk to a real uvicorn
serving the whole app (``live_server``). Synchronisation is Playwright's auto-waiting only: no
sleeps. Every page's console errors and uncaught exceptions are collected and must be none.
Screenshots land in ``test-artifacts/screenshots/`` for people to look at, with
``IMAGESHARK_TEST_SCREENSHOTS=1``.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zxingcpp
from PIL import Image
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    expect,
)

from tests.e2e.guest_session import UploadEnds
from tests.e2e.host_wall_session import screenshot
from tests.photos import make_phone_jpeg

# Live updates must arrive "within a second"; the margin absorbs a loaded CI machine.
LIVE_TIMEOUT_MS = 5_000
# Uploading and rendering a 12 MP photo is real work.
UPLOAD_TIMEOUT_MS = 60_000


@dataclass
class ConsoleLog:
    """Console errors and uncaught exceptions of every watched page, labelled by page."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page, label: str) -> Page:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.errors.append(f"[{label}] console: {message.text} ({message.location})")

        def on_page_error(error: Exception) -> None:
            self.errors.append(f"[{label}] uncaught: {error}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        return page


async def new_context(browser: Browser, **options: Any) -> BrowserContext:
    context = await browser.new_context(**options)
    context.set_default_timeout(15_000)
    return context


async def room_data(page: Page) -> dict[str, Any]:
    """The room view the server embedded in the page."""
    text = await page.locator("#room-data").text_content()
    assert text
    data: dict[str, Any] = json.loads(text)
    return data


def decode_qr(png: bytes) -> str:
    """The text of the single QR code in a PNG."""
    with Image.open(io.BytesIO(png)) as picture:
        picture.load()
        results = zxingcpp.read_barcodes(picture)
    assert len(results) == 1, f"expected one QR code, found {len(results)}"
    return str(results[0].text)


def image_card(page: Page, image_id: int) -> Any:
    return page.locator(f'[data-testid="image"][data-image-id="{image_id}"]')


async def mark_no_reload(page: Page) -> None:
    """Tag the page's JS realm; the tag survives only if the page is never reloaded."""
    await page.evaluate("window.__imagesharkNoReload = true")


async def assert_not_reloaded(page: Page) -> None:
    assert await page.evaluate("window.__imagesharkNoReload === true"), "the page was reloaded"


async def assert_image_loaded(locator: Any) -> None:
    """The <img> really rendered (decoded pixels), not just an element in the DOM."""
    await expect(locator).to_be_visible()
    handle = await locator.element_handle()
    loaded = await handle.evaluate("img => img.complete && img.naturalWidth > 0")
    if not loaded:
        await handle.evaluate(
            "img => new Promise((ok, fail) => {"
            " img.addEventListener('load', ok, {once: true});"
            " img.addEventListener('error', () => fail(new Error('image failed: ' + img.src)),"
            " {once: true}); })"
        )


async def test_photo_flows_live_from_phone_to_wall_and_host_deletes_it(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    console = ConsoleLog()
    base = live_server.base_url

    # --- The host creates a room from the landing page. -------------------------------------
    host_context = await new_context(browser, viewport={"width": 1366, "height": 900})
    host = console.watch(await host_context.new_page(), "host")
    await host.goto(base + "/")
    await host.get_by_label("What's the occasion?").fill("Ada's 30th birthday")
    await host.get_by_role("button", name="Create room", exact=True).click()
    await host.wait_for_url(re.compile(r"/r/[^/]+/host$"))

    room = await room_data(host)
    assert room["title"] == "Ada's 30th birthday"
    # The new host key is shown once, with the warning to keep it.
    host_key = host.get_by_test_id("host-key")
    await expect(host_key).to_be_visible()
    await expect(host_key).not_to_be_empty()
    await expect(host.get_by_test_id("qr")).to_be_visible()
    await expect(host.get_by_test_id("join-url")).to_have_text(room["join_url"])
    await expect(host.get_by_test_id("wall-link")).to_have_attribute("href", room["wall_url"])

    # --- The projector opens the wall before anyone uploads. --------------------------------
    wall_context = await new_context(browser, viewport={"width": 1920, "height": 1080})
    wall = console.watch(await wall_context.new_page(), "wall")
    await wall.goto(room["wall_url"])
    await expect(wall.get_by_test_id("wall-empty")).to_be_visible()
    await expect(wall.get_by_test_id("qr")).to_be_visible()
    await expect(wall.locator("#live")).to_have_attribute("data-state", "live")
    await mark_no_reload(wall)
    await screenshot(wall, "wall-1080p-empty-room")

    # --- A guest scans the QR code with a phone. --------------------------------------------
    qr = await host.request.get(base + room["qr_png_url"])
    assert qr.ok, f"QR PNG: HTTP {qr.status}"
    join_url = decode_qr(await qr.body())
    assert join_url == room["join_url"].upper()  # the QR's alphanumeric form

    phone_context = await new_context(
        browser,
        viewport={"width": 390, "height": 844},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
    )
    phone = console.watch(await phone_context.new_page(), "phone")
    await phone.goto(join_url)
    await expect(phone.get_by_role("heading", name="Ada's 30th birthday")).to_be_visible()
    await phone.get_by_test_id("name-input").fill("Grace")
    await phone.get_by_role("button", name="Join", exact=True).click()
    await expect(phone.get_by_test_id("identity")).to_have_text("Uploading as Grace")
    await expect(phone.locator("#live")).to_have_attribute("data-state", "live")
    await mark_no_reload(phone)
    await expect(host.locator("#live")).to_have_attribute("data-state", "live")
    await mark_no_reload(host)

    # --- ...and shares a 12 MP photo straight from the camera. ------------------------------
    photo = make_phone_jpeg(tmp_path / "IMG_0001.jpg")
    uploads = UploadEnds()
    await uploads.watch(phone)
    await phone.get_by_test_id("caption-input").fill("Cake time!")
    await phone.get_by_test_id("file-input").set_input_files(photo)
    status = phone.get_by_test_id("upload-status")
    await expect(status.get_by_test_id("upload-item")).to_have_attribute(
        "data-state", "done", timeout=UPLOAD_TIMEOUT_MS
    )
    assert uploads.ends == ["done"]
    image = uploads.images[0]
    image_id = image["id"]
    assert image["caption"] == "Cake time!"
    assert image["uploader_name"] == "Grace"

    await expect(status).to_contain_text("Shared with the room")

    # --- It appears everywhere without a reload. --------------------------------------------
    spotlight = wall.get_by_test_id("wall-spotlight")
    await expect(spotlight).to_have_attribute(
        "data-image-id", str(image_id), timeout=LIVE_TIMEOUT_MS
    )
    await expect(image_card(wall, image_id)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await expect(spotlight).to_contain_text("Cake time!")
    await expect(spotlight).to_contain_text("Grace")
    await assert_image_loaded(spotlight.locator(".spot-layer.is-active img.spot-img"))

    host_card = image_card(host, image_id)
    await expect(host_card).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await assert_image_loaded(host_card.locator("img"))

    phone_card = image_card(phone, image_id)
    await expect(phone_card).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    await assert_image_loaded(phone_card.locator("img"))
    await expect(phone_card.get_by_test_id("delete-image")).to_be_visible()  # own photo

    # Tapping the thumbnail opens the display rendition.
    await phone_card.get_by_role("button", name=re.compile("^Open photo")).click()
    viewer = phone.get_by_test_id("lightbox")
    await expect(viewer).to_be_visible()
    await expect(viewer.locator("img")).to_have_attribute("src", image["url"])
    await assert_image_loaded(viewer.locator("img"))
    await phone.keyboard.press("Escape")
    await expect(viewer).to_be_hidden()

    for page in (wall, host, phone):
        await assert_not_reloaded(page)

    await screenshot(host, "host-room-with-photo", full_page=True)
    await screenshot(phone, "participant-phone-390x844-after-upload")
    await screenshot(wall, "wall-1080p-new-photo")

    # --- The host deletes it; it disappears from every screen. ------------------------------
    await host_card.get_by_test_id("delete-image").click()
    dialog = host.get_by_test_id("confirm-dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_test_id("confirm-button").click()

    await expect(image_card(host, image_id)).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
    await expect(image_card(wall, image_id)).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
    await expect(image_card(phone, image_id)).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
    await expect(spotlight).not_to_have_attribute("data-image-id", str(image_id))
    await expect(wall.get_by_test_id("wall-empty")).to_be_visible()
    for page in (wall, host, phone):
        await assert_not_reloaded(page)

    # And a fresh load agrees: the photo is gone for good.
    listing = await host.request.get(f"{base}/api/rooms/{room['token']}/images")
    assert listing.ok
    assert [item["id"] for item in (await listing.json())["items"]] == []

    for context in (host_context, wall_context, phone_context):
        await context.close()
    assert console.errors == [], "console errors:\n" + "\n".join(console.errors)
