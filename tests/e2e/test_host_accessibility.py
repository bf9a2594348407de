"""The host's controls work from the keyboard alone, in a sensible order, with visible focus;
axe-core finds no serious or critical problem on the landing, host and wall pages; the pages
log no console error."""

from __future__ import annotations

from typing import Any

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
    screenshot,
    serious_axe_violations,
    set_host_key,
    upload,
    upload_ok,
)

MAX_TABS = 80


async def focused(page: Page) -> dict[str, Any]:
    """What has keyboard focus: its accessible-ish name, id, role and outline."""
    info: dict[str, Any] = await page.evaluate(
        """() => {
          const el = document.activeElement;
          const style = getComputedStyle(el);
          const labelled = el.getAttribute('aria-labelledby');
          const name = (labelled ? document.getElementById(labelled.split(' ')[0]).textContent
                         : el.getAttribute('aria-label') || el.labels?.[0]?.textContent
                           || el.textContent || '').trim().replace(/\\s+/g, ' ');
          return {id: el.id, name, role: el.getAttribute('role') || el.tagName.toLowerCase(),
                  outline: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth)};
        }"""
    )
    return info


async def tab_to(page: Page, name: str, visited: list[str]) -> dict[str, Any]:
    """Press Tab until the control named ``name`` has focus; records every stop in ``visited``."""
    for _ in range(MAX_TABS):
        await page.keyboard.press("Tab")
        info = await focused(page)
        visited.append(info["name"])
        if info["name"] == name:
            return info
    raise AssertionError(f"{name!r} not reachable with Tab; visited {visited}")


async def test_host_controls_by_keyboard_and_no_serious_axe_violations(
    live_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    async with api_client(live_server.base_url) as http:
        # The landing page, with its options open.
        landing_context = await new_context(browser, viewport=LAPTOP, bypass_csp=True)
        landing = console.watch(await landing_context.new_page(), "landing")
        await landing.goto(live_server.base_url + "/")
        assert await serious_axe_violations(landing) == []
        await landing.get_by_text("More options").click()
        await expect(landing.get_by_label("Passcode")).to_be_visible()
        assert await serious_axe_violations(landing) == []
        await screenshot(landing, "landing-more-options", full_page=True)

        room = await create_room(http, "Open day", moderation="approve", passcode="sesame")
        guest = await join(http, room, "Kim", passcode="sesame")
        waiting = await upload(http, room, guest, name="rocket", caption="Waiting")
        assert waiting.response.status_code == 201, waiting.response.text
        await http.patch(
            f"/api/rooms/{room['token']}",
            json={"moderation": "off"},
            headers={"Authorization": f"Bearer {room['host_key']}"},
        )
        await upload_ok(http, room, guest, name="coffee", caption="Shown")

        # The wall shares the host's browser (the host key opens the passcode room).
        host_context = await new_context(browser, viewport=LAPTOP, bypass_csp=True)
        await set_host_key(host_context, room)
        host = await open_host(console.watch(await host_context.new_page(), "host"), room)
        wall = await open_wall(console.watch(await host_context.new_page(), "wall"), room)
        await wall.set_viewport_size(FULL_HD)
        await expect(host.locator('[data-testid="pending-image"]')).to_have_count(1)
        await expect(host.get_by_test_id("passcode-value")).to_have_text("sesame")

        # From the top of the page, Tab reaches the room actions, the approval queue, then the
        # live controls.
        await host.locator("body").click(position={"x": 5, "y": 300})
        await host.evaluate("() => document.activeElement.blur()")
        visited: list[str] = []
        download = await tab_to(host, "Download all", visited)
        assert download["outline"] != "none" and download["outlineWidth"] >= 2, download

        # The queue's Approve button, by keyboard; focus stays in the queue afterwards.
        approve = await tab_to(host, "Approve photo by Kim", visited)
        assert approve["outline"] != "none" and approve["outlineWidth"] >= 2, approve
        await host.keyboard.press("Enter")
        await expect(host.locator('[data-testid="pending-image"]')).to_have_count(0)
        await expect(wall.locator('#wall [data-testid="image"]')).to_have_count(
            2, timeout=LIVE_TIMEOUT_MS
        )
        # Moderation is off and nothing waits: the queue hides, focus moves to the photos.
        await expect(host.get_by_test_id("approval-queue")).to_be_hidden()
        await expect(host.locator("#photos-title")).to_be_focused()

        blank = await tab_to(host, "Blank the wall", visited)
        assert blank["role"] == "switch"
        assert blank["outline"] != "none" and blank["outlineWidth"] >= 2, blank
        order = [
            visited.index(name)
            for name in ("Download all", "Close room", "Approve photo by Kim", "Blank the wall")
        ]
        assert order == sorted(order), visited

        # Space blanks the wall, Enter brings it back.
        switch = host.get_by_role("switch", name="Blank the wall")
        await host.keyboard.press("Space")
        await expect(switch).to_have_attribute("aria-checked", "true")
        await expect(wall.get_by_test_id("wall-blank")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        await expect(host.get_by_role("status").filter(has_text="wall is blanked")).to_be_visible()
        await host.keyboard.press("Enter")
        await expect(switch).to_have_attribute("aria-checked", "false")
        await expect(wall.get_by_test_id("wall-blank")).to_be_hidden(timeout=LIVE_TIMEOUT_MS)

        # Further on: the layout choice moves with the arrow keys; Grid reaches the wall.
        await tab_to(host, "Spotlight", visited)
        await host.keyboard.press("ArrowRight")
        await expect(host.get_by_role("radio", name="Grid")).to_be_checked()
        await expect(wall.locator("#wall")).to_have_attribute(
            "data-mode", "grid", timeout=LIVE_TIMEOUT_MS
        )
        assert (await host_view(http, room))["wall_mode"] == "grid"
        await screenshot(host, "host-keyboard", full_page=True)

        assert await serious_axe_violations(host) == []
        assert await serious_axe_violations(wall) == []
        await screenshot(wall, "wall-grid-passcode-room")

        # The wall at 4K, spotlight.
        await host.get_by_test_id("wall-mode").get_by_text("Spotlight", exact=True).click()
        await expect(wall.get_by_test_id("wall-spotlight")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        await wall.set_viewport_size(UHD_4K)
        await expect(wall.locator(".spot-layer.is-active img.spot-img")).to_be_visible()
        await screenshot(wall, "wall-4k")

        # The host page of someone without the key, and the wall's passcode form.
        stranger_context = await new_context(browser, viewport=LAPTOP, bypass_csp=True)
        # Without the passcode or key, the API refuses this browser (401): expected, allowed.
        stranger_console = ConsoleLog()
        stranger_console.allow(r"status of 401")
        stranger = stranger_console.watch(await stranger_context.new_page(), "stranger")
        await stranger.goto(room["wall_url"])
        await expect(stranger.get_by_test_id("wall-gate")).to_be_visible()
        assert await serious_axe_violations(stranger) == []
        await stranger.goto(room["host_url"])
        await expect(stranger.get_by_test_id("host-key-input")).to_be_visible()
        await expect(stranger.get_by_role("switch", name="Blank the wall")).to_be_hidden()
        assert await serious_axe_violations(stranger) == []

        for context in (landing_context, host_context, stranger_context):
            await context.close()
    console.assert_clean()
    stranger_console.assert_clean()
