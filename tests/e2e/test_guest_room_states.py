"""What a guest sees when the host changes the room: a passcode to join (wrong passcode, too
many tries), uploads paused and resumed, photos waiting for approval (approved or declined),
and the room closed. The host acts over the API, as the host page would; the phone sees each
change live, without reloading.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Route, expect

from tests.conftest import SettingsFactory, run_server
from tests.e2e.guest_session import (
    LIVE_TIMEOUT_MS,
    PHONE_360,
    PHONE_390,
    UPLOAD_BODY_URL,
    UPLOAD_TIMEOUT_MS,
    ConsoleLog,
    UploadEnds,
    assert_no_horizontal_overflow,
    create_room,
    host_headers,
    image_card,
    join,
    open_room,
    patch_room,
    phone_context,
    pick_photos,
    room_images,
    screenshot,
    upload_rows,
)
from tests.photos import make_image_bytes, make_phone_jpeg


async def host_upload(http: httpx.AsyncClient, room: dict[str, Any], name: str) -> dict[str, Any]:
    """The host shares a photo too (by host key), so guests have something to see."""
    response = await http.post(
        f"/api/rooms/{room['token']}/images",
        files={"file": (f"{name}.jpg", make_image_bytes("jpeg", name=name), "image/jpeg")},
        headers=host_headers(room),
    )
    assert response.status_code == 201, response.text
    image: dict[str, Any] = response.json()
    return image


async def test_passcode_room_asks_for_the_passcode_and_limits_tries(
    make_settings: SettingsFactory, browser: Browser, tmp_path: Path
) -> None:
    console = ConsoleLog()
    # Refusals provoked on purpose: wrong passcode, an images list asked for without joining,
    # too many tries.
    console.allow(r"status of 403", r"status of 401", r"status of 429")
    settings = make_settings(join_rate_limit="3/minute")
    async with contextlib.AsyncExitStack() as stack:
        server = await stack.enter_async_context(
            contextlib.asynccontextmanager(run_server)(settings)
        )
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=server.base_url, timeout=30)
        )
        room = await create_room(http, "Board meeting", passcode="tulip-42")
        public = (await http.get(f"/api/rooms/{room['token']}")).json()
        assert public["passcode_required"] is True
        assert "passcode" not in public
        refused = await http.get(f"/api/rooms/{room['token']}/images")
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "passcode_required"
        shared = await host_upload(http, room, "coffee")

        context = await phone_context(browser, PHONE_360)
        page = console.watch(await context.new_page(), "phone")
        await open_room(page, room)
        await expect(page.get_by_test_id("passcode-input")).to_be_visible()
        await expect(page.get_by_test_id("locked")).to_be_visible()
        await expect(page.locator("#gallery")).to_be_hidden()
        await expect(page.get_by_text("This room is private.")).to_be_visible()
        # The page itself asked for nothing it may not see.
        assert console.network == []
        await assert_no_horizontal_overflow(page)
        await screenshot(page, "passcode")

        # Without joining, the API refuses the images list from this browser too.
        status = await page.evaluate(
            "token => fetch(`/api/rooms/${token}/images`).then(r => r.status)", room["token"]
        )
        assert status == 401

        # Try 1: wrong passcode.
        await page.get_by_test_id("name-input").fill("Priya")
        await page.get_by_test_id("passcode-input").fill("tulip-24")
        await page.get_by_role("button", name="Join", exact=True).click()
        error = page.get_by_test_id("join-error")
        await expect(error).to_have_text(
            "That passcode isn't right. Check it with the host and try again."
        )
        passcode = page.get_by_test_id("passcode-input")
        await expect(passcode).to_have_attribute("aria-invalid", "true")
        await expect(passcode).to_be_focused()
        await expect(page.get_by_test_id("locked")).to_be_visible()
        await screenshot(page, "wrong-passcode")

        # Try 2: right passcode: in, and the room's photos arrive live.
        await join(page, "Priya", passcode="tulip-42")
        await expect(page.get_by_test_id("locked")).to_be_hidden()
        await expect(image_card(page, shared["id"])).to_be_visible()
        await expect(page.locator("#live")).to_have_attribute("data-state", "live")
        later = await host_upload(http, room, "chelsea")
        await expect(image_card(page, later["id"])).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        await pick_photos(page, [make_phone_jpeg(tmp_path / "IMG_1.jpg", size=(1200, 900))])
        await expect(upload_rows(page).first).to_have_attribute(
            "data-state", "done", timeout=UPLOAD_TIMEOUT_MS
        )
        assert len(await room_images(http, room)) == 3
        await screenshot(page, "passcode-joined")

        # Another phone on the same network guesses: try 3 is refused, try 4 is one too many.
        other = await phone_context(browser, PHONE_390)
        guesser = console.watch(await other.new_page(), "guesser")
        await open_room(guesser, room)
        await guesser.get_by_test_id("name-input").fill("Mallory")
        for guess in ("0000", "1234"):
            await guesser.get_by_test_id("passcode-input").fill(guess)
            await guesser.get_by_role("button", name="Join", exact=True).click()
            if guess == "0000":
                await expect(guesser.get_by_test_id("join-error")).to_contain_text(
                    "passcode isn't right"
                )
        waiting = guesser.get_by_test_id("join-error")
        await expect(waiting).to_contain_text(
            re.compile(r"Too many tries from this network\. Please wait \d+ s")
        )
        await expect(guesser.get_by_test_id("join-button")).to_be_disabled()
        await screenshot(guesser, "join-rate-limited")

        await other.close()
        await context.close()
    assert any("403" in line for line in console.network)
    assert any("429" in line for line in console.network)
    console.assert_clean()


async def test_uploads_paused_then_resumed_live(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    console = ConsoleLog()
    photo = make_phone_jpeg(tmp_path / "IMG_7.jpg", name="chelsea", size=(1600, 1200))

    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await create_room(http, "School trip")
        context = await phone_context(browser, PHONE_360)
        page = console.watch(await context.new_page(), "phone")
        await open_room(page, room)
        await join(page, "Jonas")
        await expect(page.locator("#live")).to_have_attribute("data-state", "live")

        # The host pauses: the phone says so at once and the picker is off.
        await patch_room(http, room, uploads_open=False)
        paused = page.get_by_test_id("uploads-paused")
        await expect(paused).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        await expect(page.get_by_test_id("file-input")).to_be_disabled()
        await expect(page.get_by_test_id("picker-hint")).to_have_text(
            "The host has paused uploads. Try again when they reopen."
        )
        await assert_no_horizontal_overflow(page)
        await screenshot(page, "uploads-paused")

        await patch_room(http, room, title="School trip: day 2", uploads_open=True)
        await expect(paused).to_be_hidden(timeout=LIVE_TIMEOUT_MS)
        await expect(page.get_by_test_id("room-title")).to_have_text("School trip: day 2")
        await expect(page).to_have_title("School trip: day 2 · ImageShark")
        await expect(page.get_by_test_id("file-input")).to_be_enabled()

        # The host pauses while a photo's bytes are on their way: the server refuses it
        # (uploads_paused), the queue does not retry it by itself, and sends it when the host
        # reopens.
        async def pause_then_send(route: Route) -> None:
            await patch_room(http, room, uploads_open=False)
            await route.continue_()

        uploads = UploadEnds()
        await uploads.watch(page)
        await page.route(UPLOAD_BODY_URL, pause_then_send)
        await pick_photos(page, [photo])
        row = upload_rows(page).first
        await expect(row).to_have_attribute("data-state", "failed", timeout=UPLOAD_TIMEOUT_MS)
        await expect(row).to_contain_text("The host has paused uploads")
        await expect(paused).to_be_visible()
        await screenshot(page, "upload-refused-paused")
        await page.unroute(UPLOAD_BODY_URL)
        assert uploads.ends == ["uploads_paused"]
        assert await room_images(http, room) == []

        await patch_room(http, room, uploads_open=True)
        await expect(row).to_have_attribute("data-state", "done", timeout=UPLOAD_TIMEOUT_MS)
        await expect(row).to_have_attribute("data-attempts", "2")
        assert uploads.ends == ["uploads_paused", "done"]
        assert len(await room_images(http, room)) == 1

        await context.close()
    console.assert_clean()


async def test_photos_wait_for_approval_then_show_or_are_declined(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    console = ConsoleLog()
    photos = [
        make_phone_jpeg(tmp_path / f"IMG_8{n}.jpg", name=name, size=(1600, 1200))
        for n, name in enumerate(("coffee", "rocket"))
    ]

    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await create_room(http, "Photo contest", moderation="approve")
        context = await phone_context(browser, PHONE_390)
        page = console.watch(await context.new_page(), "phone")
        await open_room(page, room)
        await join(page, "Malik")
        await expect(page.locator("#live")).to_have_attribute("data-state", "live")

        await pick_photos(page, photos)
        rows = upload_rows(page)
        await expect(rows).to_have_count(2)
        for row in await rows.all():
            await expect(row).to_have_attribute("data-state", "pending", timeout=UPLOAD_TIMEOUT_MS)
            await expect(row).to_contain_text("Waiting for the host's approval")
        await expect(page.get_by_test_id("upload-summary")).to_have_text("2 waiting for approval")
        await expect(page.locator("#gallery [data-testid='image']")).to_have_count(0)
        await screenshot(page, "pending-approval")

        pending = await http.get(f"/api/rooms/{room['token']}/pending", headers=host_headers(room))
        queue = pending.json()["items"]
        assert len(queue) == 2
        approved, declined = sorted(queue, key=lambda image: image["id"])

        answer = await http.post(
            f"/api/rooms/{room['token']}/images/{approved['id']}/approve",
            headers=host_headers(room),
        )
        assert answer.status_code == 200, answer.text
        approved_row = page.locator(
            f'[data-testid="upload-item"][data-image-id="{approved["id"]}"]'
        )
        await expect(approved_row).to_have_attribute("data-state", "done", timeout=LIVE_TIMEOUT_MS)
        await expect(approved_row).to_contain_text("Shared with the room · on the wall")
        await expect(image_card(page, approved["id"])).to_be_visible()

        answer = await http.post(
            f"/api/rooms/{room['token']}/images/{declined['id']}/reject",
            headers=host_headers(room),
        )
        assert answer.status_code == 204, answer.text
        declined_row = page.locator(
            f'[data-testid="upload-item"][data-image-id="{declined["id"]}"]'
        )
        await expect(declined_row).to_have_attribute(
            "data-state", "declined", timeout=LIVE_TIMEOUT_MS
        )
        await expect(declined_row).to_contain_text("The host didn't approve this photo.")
        await expect(image_card(page, declined["id"])).to_have_count(0)
        await screenshot(page, "declined")

        # A reload shows the same, from the server's list of the guest's photos.
        await page.reload()
        await expect(upload_rows(page)).to_have_count(1)
        await expect(upload_rows(page).first).to_have_attribute("data-state", "done")

        await context.close()
    console.assert_clean()


async def test_closed_room_keeps_photos_but_takes_no_more(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    console = ConsoleLog()
    photo = make_phone_jpeg(tmp_path / "IMG_9.jpg", name="astronaut", size=(1600, 1200))

    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await create_room(http, "Farewell drinks")
        context = await phone_context(browser, PHONE_360)
        page = console.watch(await context.new_page(), "phone")
        await open_room(page, room)
        await join(page, "Kim")
        await expect(page.locator("#live")).to_have_attribute("data-state", "live")
        await pick_photos(page, [photo])
        row = upload_rows(page).first
        await expect(row).to_have_attribute("data-state", "done", timeout=UPLOAD_TIMEOUT_MS)
        image_id = int(await row.get_attribute("data-image-id") or 0)

        closed = await http.post(f"/api/rooms/{room['token']}/close", headers=host_headers(room))
        assert closed.status_code == 200, closed.text
        banner = page.get_by_test_id("room-closed")
        await expect(banner).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        await expect(page.get_by_test_id("file-input")).to_be_hidden()
        await expect(page.locator("#upload")).to_be_hidden()
        await expect(image_card(page, image_id)).to_be_visible()
        await expect(row).to_have_attribute("data-state", "done")
        await assert_no_horizontal_overflow(page)
        await screenshot(page, "room-closed")

        # A guest arriving after the end sees the photos and the notice, and no join form.
        late = await phone_context(browser, PHONE_390)
        newcomer = console.watch(await late.new_page(), "newcomer")
        await open_room(newcomer, room)
        await expect(newcomer.get_by_test_id("room-closed")).to_be_visible()
        await expect(newcomer.locator("#join")).to_be_hidden()
        await expect(image_card(newcomer, image_id)).to_be_visible()

        await late.close()
        await context.close()
    console.assert_clean()


async def test_guest_back_after_missing_too_much_gets_snapshot_and_settings(
    make_settings: SettingsFactory, browser: Browser
) -> None:
    """A phone offline while more happened than the server replays: it gets a snapshot of the
    photos and reloads the room's settings (title, paused), with no page reload."""
    console = ConsoleLog()
    console.allow(r"ERR_INTERNET_DISCONNECTED", r"WebSocket connection to")
    settings = make_settings(replay_limit=2)
    async with contextlib.AsyncExitStack() as stack:
        server = await stack.enter_async_context(
            contextlib.asynccontextmanager(run_server)(settings)
        )
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=server.base_url, timeout=30)
        )
        room = await create_room(http, "Conference day 1")
        context = await phone_context(browser, PHONE_390)
        page = console.watch(await context.new_page(), "phone")
        snapshots: list[str] = []
        page.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived",
                lambda frame: snapshots.append(str(frame)) if '"snapshot"' in str(frame) else None,
            ),
        )
        await open_room(page, room)
        await join(page, "Ines")
        live = page.locator("#live")
        await expect(live).to_have_attribute("data-state", "live")
        await page.evaluate("window.__noReload = true")

        await context.set_offline(True)
        await expect(live).not_to_have_attribute("data-state", "live", timeout=LIVE_TIMEOUT_MS)
        await patch_room(http, room, title="Conference day 2", uploads_open=False)
        added = [await host_upload(http, room, name) for name in ("coffee", "rocket", "chelsea")]
        await context.set_offline(False)

        await expect(live).to_have_attribute("data-state", "live", timeout=30_000)
        await expect(page.get_by_test_id("room-title")).to_have_text("Conference day 2")
        await expect(page.get_by_test_id("uploads-paused")).to_be_visible()
        await expect(page.get_by_test_id("file-input")).to_be_disabled()
        for image in added:
            await expect(image_card(page, image["id"])).to_be_visible()
        assert snapshots, "the server should have sent a snapshot, not a replay"
        assert await page.evaluate("window.__noReload === true")

        await context.close()
    console.assert_clean()
