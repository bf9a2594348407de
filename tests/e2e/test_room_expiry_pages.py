"""Expiry in Chromium: the host of a room expiring in three days sees the warning and extends
the room from it (laptop and phone); an expired room's join link and wall say the room ended,
with its title and date, instead of a bare 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.async_api import Browser, expect
from sqlalchemy import update

from tests.conftest import LiveServer, SettingsFactory, run_server
from tests.e2e.host_wall_session import (
    LAPTOP,
    ConsoleLog,
    api_client,
    host_view,
    join,
    new_context,
    screenshot,
    set_host_key,
    upload_ok,
)
from web.database import Database
from web.schema import rooms

PHONE = {"width": 390, "height": 844}


async def test_host_is_warned_and_extends_the_room(
    live_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    for label, viewport in (("laptop", LAPTOP), ("phone", PHONE)):
        async with api_client(live_server.base_url) as http:
            soon = datetime.now(UTC) + timedelta(days=3)
            response = await http.post(
                "/api/rooms", json={"title": "Gala", "expires_at": soon.isoformat()}
            )
            assert response.status_code == 201, response.text
            room = response.json()
            context = await new_context(browser, viewport=viewport, is_mobile=label == "phone")
            await set_host_key(context, room)
            page = console.watch(await context.new_page(), label)
            await page.goto(room["host_url"])
            warning = page.get_by_test_id("expiry-warning")
            await expect(warning).to_be_visible()
            await expect(warning).to_contain_text("will be deleted on")
            await expect(warning).to_contain_text("download the ZIP or extend it")
            # The banner is the first thing on the page, above the room's title.
            banner_box = await warning.bounding_box()
            title_box = await page.get_by_test_id("room-title").bounding_box()
            assert banner_box is not None and title_box is not None
            assert banner_box["y"] < title_box["y"]
            assert banner_box["y"] + banner_box["height"] <= viewport["height"]
            await screenshot(page, f"host-expiry-warning-{label}")
            await page.get_by_test_id("extend-room").click()
            await expect(warning).to_be_hidden()
            view = await host_view(http, room)
            extended = datetime.fromisoformat(view["expires_at"])
            assert extended > datetime.now(UTC) + timedelta(days=29)
            # Reloaded, the page no longer warns.
            await page.reload()
            await expect(page.get_by_test_id("room-title")).to_be_visible()
            await expect(warning).to_have_count(0)
            await context.close()
    console.assert_clean()


async def test_expired_room_links_say_the_room_ended(
    make_settings: SettingsFactory, browser: Browser
) -> None:
    console = ConsoleLog()
    console.allow("status of 410")
    async for server in run_server(make_settings(room_ttl_hours=1e-9)):
        async with api_client(server.base_url) as http:
            response = await http.post("/api/rooms", json={"title": "Lea's farewell"})
            assert response.status_code == 201, response.text
            room = response.json()
        ended = datetime.fromisoformat(room["expires_at"])
        context = await new_context(browser, viewport=PHONE, is_mobile=True, has_touch=True)
        page = console.watch(await context.new_page(), "phone")
        for url in (room["join_url"], room["wall_url"]):
            answer = await page.goto(url)
            assert answer is not None and answer.status == 410
            card = page.get_by_test_id("room-ended")
            await expect(card).to_contain_text("This room has ended")
            await expect(page.get_by_test_id("ended-title")).to_have_text("Lea's farewell")
            await expect(page.get_by_test_id("ended-at")).to_have_attribute(
                "datetime", ended.isoformat()
            )
            await expect(page.get_by_test_id("ended-at")).to_contain_text(
                ended.strftime("%-d %B %Y")
            )
        await screenshot(page, "guest-room-ended-phone")
        await context.close()
    console.assert_clean()


async def test_host_sets_grace_and_guests_see_read_only_gallery(
    live_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    console.allow("status of 410")
    async with api_client(live_server.base_url) as http:
        response = await http.post("/api/rooms", json={"title": "Summer party"})
        assert response.status_code == 201, response.text
        room = response.json()
        guest = await join(http, room, "Tom")
        photo = await upload_ok(http, room, guest, name="coffee")
        context = await new_context(browser, viewport=LAPTOP)
        await set_host_key(context, room)
        host = console.watch(await context.new_page(), "host")
        await host.goto(room["host_url"])
        grace = host.get_by_test_id("gallery-grace")
        await expect(grace).to_be_visible()
        await host.locator("#grace-days").fill("5")
        await host.locator("#grace-save").click()
        await expect(host.locator("#toasts")).to_contain_text("5 days after the room ends")
        assert (await host_view(http, room))["gallery_grace_days"] == 5
        await context.close()

    # The room expires (its expiry moved into the past, as time passing would).
    database = Database(live_server.settings)
    try:
        async with database.transaction() as connection:
            await connection.execute(
                update(rooms)
                .where(rooms.c.token == room["token"])
                .values(expires_at=datetime.now(UTC) - timedelta(hours=1))
            )
    finally:
        await database.close()

    phone = await new_context(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    page = console.watch(await phone.new_page(), "phone")
    answer = await page.goto(room["join_url"])
    assert answer is not None and answer.status == 410
    await expect(page.get_by_test_id("room-ended")).to_contain_text("read-only")
    tile = page.get_by_test_id("ended-photo")
    await expect(tile).to_have_count(1)
    await expect(tile).to_have_attribute("data-image-id", str(photo["id"]))
    loaded = await tile.locator("img").evaluate("img => img.decode().then(() => img.naturalWidth)")
    assert loaded > 0
    # Nothing to upload or join with.
    await expect(page.locator("input[type=file]")).to_have_count(0)
    await expect(page.get_by_test_id("name-input")).to_have_count(0)
    await screenshot(page, "guest-room-grace-gallery-phone")
    await phone.close()
    console.assert_clean()
