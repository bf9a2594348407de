"""The participant page on small phones, with a keyboard and with assistive technology in mind:
no sideways scrolling at 360 and 390 px, an axe-core audit with no serious or critical
violation in each state a guest meets, controls reachable and visibly focused by keyboard,
status text in live regions.

axe-core comes from npm (``node_modules/axe-core``, a development dependency); the page's CSP
forbids injected scripts, so these contexts bypass CSP, for the audit only. The other guest
tests run with the CSP on and would catch any inline script or style the page needed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, expect

from tests.e2e.guest_session import (
    PHONE_360,
    PHONE_390,
    REPO_ROOT,
    UPLOAD_TIMEOUT_MS,
    ConsoleLog,
    assert_no_horizontal_overflow,
    create_room,
    host_headers,
    open_room,
    phone_context,
    pick_photos,
    screenshot,
    upload_rows,
)
from tests.photos import make_phone_jpeg

AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
LONG_TITLE = "Anniversary dinner of the Association of Extraordinarily Long Names and Titles"


async def audit(page: Page, state: str) -> None:
    """Run axe-core on the page; fail on any serious or critical violation."""
    # A photo fading in has, for a moment, too little contrast: audit what stays on screen (an
    # animation cancelled meanwhile, its element redrawn, is not on screen).
    await page.evaluate(
        """() => Promise.all(document.getAnimations()
            .filter(a => a.effect && a.effect.getComputedTiming().iterations !== Infinity)
            .map(a => a.finished.catch(() => null)))"""
    )
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = await page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']})"
    )
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} -> "
        + "; ".join(node["target"][0] if node["target"] else "?" for node in v["nodes"][:5])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"axe violations in state {state!r}:\n" + "\n".join(bad)


async def focus_outline(page: Page, selector: str) -> str:
    """The computed outline style of the element the keyboard focus shows on."""
    style: str = await page.eval_on_selector(selector, "e => getComputedStyle(e).outlineStyle")
    return style


async def test_phone_layout_keyboard_and_axe_audit(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    assert AXE.is_file(), "run `npm ci` first: axe-core is a development dependency"
    console = ConsoleLog()
    console.allow(r"status of 403")
    photos = {
        360: [
            make_phone_jpeg(tmp_path / "IMG_20240601_183012_from_a_long_camera_name.jpg"),
            make_phone_jpeg(tmp_path / "IMG_2.jpg", name="chelsea", size=(1200, 1600)),
        ],
        390: [
            make_phone_jpeg(tmp_path / "IMG_3.jpg", name="rocket", size=(1600, 1200)),
            make_phone_jpeg(tmp_path / "IMG_4.jpg", name="astronaut", size=(1200, 1600)),
        ],
    }

    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await create_room(http, LONG_TITLE, passcode="open-sesame", max_uploads_per_guest=50)
        for viewport in (PHONE_360, PHONE_390):
            context = await phone_context(browser, viewport, bypass_csp=True)
            page = console.watch(await context.new_page(), f"phone-{viewport['width']}")
            await open_room(page, room)
            await assert_no_horizontal_overflow(page)
            await audit(page, "passcode form")

            # Keyboard only: Tab reaches the fields and the button, each visibly focused.
            await page.get_by_test_id("name-input").focus()
            await page.keyboard.type("Zoë")
            await page.keyboard.press("Tab")
            await expect(page.get_by_test_id("passcode-input")).to_be_focused()
            await page.keyboard.type("wrong")
            await page.keyboard.press("Tab")
            await expect(page.get_by_test_id("join-button")).to_be_focused()
            assert await focus_outline(page, "#join-button") != "none"
            await page.keyboard.press("Enter")
            await expect(page.get_by_test_id("join-error")).to_be_visible()
            assert await page.get_attribute("#join-error", "role") == "alert"
            await assert_no_horizontal_overflow(page)
            await audit(page, "wrong passcode")

            await page.get_by_test_id("passcode-input").fill("open-sesame")
            await page.get_by_test_id("passcode-input").press("Enter")
            await expect(page.get_by_test_id("identity")).to_have_text("Uploading as Zoë")
            await expect(page.get_by_test_id("file-input")).to_be_focused()
            # The real input is invisible; its label shows the keyboard focus instead.
            assert await focus_outline(page, "#picker-button") != "none"
            await assert_no_horizontal_overflow(page)
            await audit(page, "joined")

            await pick_photos(page, photos[viewport["width"]])
            await expect(upload_rows(page)).to_have_count(2)
            for row in await upload_rows(page).all():
                await expect(row).to_have_attribute("data-state", "done", timeout=UPLOAD_TIMEOUT_MS)
            # Status text is announced: the upload summary and the room notices are live regions.
            assert await page.get_attribute("#upload-summary-text", "role") == "status"
            assert await page.get_attribute(".room-notices", "aria-live") == "polite"
            await assert_no_horizontal_overflow(page)
            await audit(page, "with uploads")
            await screenshot(page, f"phone-{viewport['width']}-with-uploads")

            # The photo viewer: every control reachable, Escape closes.
            await page.locator("#gallery .photo-open").first.click()
            viewer = page.get_by_test_id("lightbox")
            await expect(viewer).to_be_visible()
            await audit(page, "photo viewer")
            for _ in range(6):
                await page.keyboard.press("Tab")
                if await viewer.get_by_test_id("lightbox-download").evaluate(
                    "e => e === document.activeElement"
                ):
                    break
            await expect(viewer.get_by_test_id("lightbox-download")).to_be_focused()
            await page.keyboard.press("Escape")
            await expect(viewer).to_be_hidden()

            if viewport is PHONE_390:
                closed = await http.post(
                    f"/api/rooms/{room['token']}/close", headers=host_headers(room)
                )
                assert closed.status_code == 200
                await expect(page.get_by_test_id("room-closed")).to_be_visible()
                await assert_no_horizontal_overflow(page)
                await audit(page, "room closed")
                await screenshot(page, "phone-390-room-closed")

            # The delete buttons of one's own photos say what they delete.
            labels = await page.locator("[data-testid=upload-delete]").evaluate_all(
                "buttons => buttons.map(b => b.getAttribute('aria-label'))"
            )
            assert all(re.match(r"^Delete .+", label or "") for label in labels), labels
            await context.close()
    console.assert_clean()
