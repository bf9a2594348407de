"""A guest who types the room code on the landing page (any case, as read off a table card)
reaches the room's participant page through the short join URL; a mistyped code is refused on
the spot, and the QR's upper-case URL opens the same page."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.conftest import LiveServer
from tests.e2e.guest_session import PHONE_390
from tests.e2e.host_wall_session import api_client, create_room, new_context


async def test_landing_code_field_opens_the_room(live_server: LiveServer, browser: Browser) -> None:
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Code night")
    context = await new_context(browser, viewport=PHONE_390, is_mobile=True, has_touch=True)
    page = await context.new_page()
    await page.goto(live_server.base_url + "/")
    field = page.get_by_test_id("room-code-input")
    await field.fill("7K3Q")
    await page.get_by_test_id("join-by-code").click()
    await expect(page.locator("#code-error")).to_contain_text("8 letters and digits")
    await expect(field).to_have_attribute("aria-invalid", "true")
    await field.fill(f" {room['code'][:4].lower()}-{room['code'][4:].lower()} ")
    await page.get_by_test_id("join-by-code").click()
    await page.wait_for_url(f"{live_server.base_url}/j/{room['code']}")
    await expect(page.get_by_role("heading", name="Code night")).to_be_visible()
    await expect(page.get_by_test_id("name-input")).to_be_visible()
    # The QR's form of the join URL, upper-cased whole, opens the same page.
    await page.goto(room["join_url"].upper())
    await expect(page.get_by_role("heading", name="Code night")).to_be_visible()
