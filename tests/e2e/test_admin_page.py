"""The admin page: a signed-out visitor is asked to sign in; an admin signs in from the page,
closes a room (after confirming) and sees it closed; axe-core finds no serious or critical
problem on it."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.conftest import LiveServer
from tests.e2e.host_wall_session import (
    LAPTOP,
    ConsoleLog,
    api_client,
    create_room,
    new_context,
    screenshot,
    serious_axe_violations,
)
from tests.web.accounts_helpers import PASSWORD, repositories
from web.accounts.passwords import Passwords
from web.admin.repository import AdminRepository
from web.admin.service import create_admin
from web.rooms.service import utc_now

ADMIN = "root@example.org"


async def test_admin_signs_in_and_closes_a_room(live_server: LiveServer, browser: Browser) -> None:
    async with repositories(live_server.settings) as (accounts, _):
        await create_admin(
            accounts, AdminRepository(accounts.database), Passwords(1), ADMIN, PASSWORD, utc_now()
        )
    console = ConsoleLog()
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Flooded with spam")
        kept = await create_room(http, "Garden party")
        context = await new_context(browser, viewport=LAPTOP, bypass_csp=True)
        page = console.watch(await context.new_page(), "admin")
        await page.goto(live_server.base_url + "/admin")
        await expect(page.get_by_test_id("admin-signed-out")).to_be_visible()
        assert await serious_axe_violations(page) == []

        # Signing in from the page (POST /api/session in the page) shows the tables.
        await page.get_by_label("E-mail address").fill(ADMIN)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_test_id("sign-in").click()
        rows = page.get_by_test_id("rooms-table").locator("tbody tr")
        await expect(rows).to_have_count(2)
        row = page.locator(f'tr[data-token="{room["token"]}"]')
        await expect(row.get_by_test_id("room-state")).to_have_text("open")

        await row.get_by_role("button", name="Close Flooded with spam").click()
        dialog = page.get_by_test_id("confirm-dialog")
        await expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
        await dialog.get_by_test_id("confirm-button").click()
        await expect(row.get_by_test_id("room-state")).to_have_text("closed")
        await expect(row.get_by_role("button", name="Close Flooded with spam")).to_have_count(0)
        assert (await http.get(f"/api/rooms/{room['token']}")).json()["closed"] is True
        assert (await http.get(f"/api/rooms/{kept['token']}")).json()["closed"] is False
        # After a reload the server says so too.
        await page.reload()
        await expect(row.get_by_test_id("room-state")).to_have_text("closed")

        # Sorting by size marks the column for assistive technology.
        size = page.get_by_role("button", name="Size")
        await size.click()
        await expect(page.locator('th[data-sort-key="bytes"]')).to_have_attribute(
            "aria-sort", "descending"
        )
        await expect(page.get_by_test_id("accounts-table")).to_contain_text(ADMIN)
        assert await serious_axe_violations(page) == []
        await screenshot(page, "admin-page", full_page=True)
        await context.close()
    console.assert_clean()
