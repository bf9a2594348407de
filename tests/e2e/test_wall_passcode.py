"""A passcode room's wall: with the host key in the browser it opens straight away (host key in
the Socket.IO auth and the Authorization header); without it, it asks for the passcode, joins
as the participant "Wall" and then shows the photos live, also after a reload."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.conftest import LiveServer
from tests.e2e.host_wall_session import (
    FULL_HD,
    LIVE_TIMEOUT_MS,
    ConsoleLog,
    api_client,
    create_room,
    join,
    new_context,
    screenshot,
    set_host_key,
    upload_ok,
    wall_tiles,
)


async def test_passcode_room_wall_with_host_key_or_passcode(
    live_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    # The wrong passcode below is refused on purpose (403).
    console.allow(r"status of 403")
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Private dinner", passcode="olive-tree")
        guest = await join(http, room, "Jo", passcode="olive-tree")
        first = await upload_ok(http, room, guest, name="coffee", caption="Starter")

        # The host's own browser: the stored host key opens the wall, no question asked.
        host_context = await new_context(browser, viewport=FULL_HD)
        await set_host_key(host_context, room)
        host_wall = console.watch(await host_context.new_page(), "host-wall")
        await host_wall.goto(room["wall_url"])
        await expect(host_wall.locator("#live")).to_have_attribute("data-state", "live")
        await expect(host_wall.get_by_test_id("wall-gate")).to_be_hidden()
        await expect(host_wall.get_by_test_id("wall-spotlight")).to_have_attribute(
            "data-image-id", str(first["id"])
        )

        # A projector's browser without the key: the passcode form, nothing of the room's photos.
        projector_context = await new_context(browser, viewport=FULL_HD)
        wall = console.watch(await projector_context.new_page(), "wall")
        await wall.goto(room["wall_url"])
        gate = wall.get_by_test_id("wall-gate")
        await expect(gate).to_be_visible()
        await expect(gate).to_contain_text("Private dinner")
        await expect(wall_tiles(wall)).to_have_count(0)
        await expect(wall.get_by_label("Room passcode")).to_be_focused()
        await screenshot(wall, "wall-passcode-form")

        await wall.get_by_label("Room passcode").fill("olive-branch")
        await wall.get_by_role("button", name="Show photos").click()
        await expect(wall.get_by_role("alert")).to_contain_text("isn't right")
        await expect(wall.get_by_label("Room passcode")).to_have_attribute("aria-invalid", "true")
        await screenshot(wall, "wall-passcode-wrong")

        await wall.get_by_label("Room passcode").fill("olive-tree")
        await wall.get_by_role("button", name="Show photos").click()
        await expect(gate).to_be_hidden()
        await expect(wall.locator("#live")).to_have_attribute("data-state", "live")
        await expect(wall.get_by_test_id("wall-spotlight")).to_have_attribute(
            "data-image-id", str(first["id"])
        )

        # Both walls get the next photo live.
        second = await upload_ok(http, room, guest, name="rocket", caption="Main course")
        for page in (wall, host_wall):
            await expect(page.get_by_test_id("wall-spotlight")).to_have_attribute(
                "data-image-id", str(second["id"]), timeout=LIVE_TIMEOUT_MS
            )
        await screenshot(wall, "wall-passcode-joined")

        # A reload keeps the wall in (its cookie), without asking again.
        await wall.reload()
        await expect(wall.locator("#live")).to_have_attribute("data-state", "live")
        await expect(wall_tiles(wall)).to_have_count(2)
        await expect(gate).to_be_hidden()

        for context in (host_context, projector_context):
            await context.close()
    assert any("403" in line for line in console.network), "the wrong passcode was not sent"
    console.assert_clean()
