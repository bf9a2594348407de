"""The phone's upload queue on a bad connection: every failure that waiting can fix is retried
by itself with backoff (honouring Retry-After), at once when the browser comes back online, and
on demand with "Retry all"; a retry sends the very same bytes, so an upload whose answer was
lost is not stored twice.

The page sends each photo through the direct upload flow (ask, PUT the bytes, complete, poll
the state). Failures are made with ``page.route`` on the bytes' PUT or the state poll (the
request never leaves the browser, or reaches the server and its answer is thrown away) and
``context.set_offline``. Retry timers run on Playwright's fake clock, paused, so the test moves
time forward itself: no sleeps, and every intermediate state can be looked at. The state polls
are held until the upload is processed (``UploadEnds(settle=True)``), so the page never waits
on its poll timer.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, Request, Route, expect

from tests.e2e.guest_session import (
    PHONE_390,
    UPLOAD_BODY_URL,
    UPLOAD_TIMEOUT_MS,
    ConsoleLog,
    UploadEnds,
    create_room,
    join,
    open_room,
    phone_context,
    pick_photos,
    room_images,
    screenshot,
    upload_rows,
)
from tests.photos import make_phone_jpeg


def uploaded_file(request: Request) -> bytes:
    """The photo's bytes in a direct upload's ``PUT``, exactly as sent."""
    body = request.post_data_buffer
    assert body is not None
    return body


async def pause_clock(page: Page) -> None:
    """Stop the page's timers (the fake clock was installed before the page loaded)."""
    await page.clock.pause_at(datetime.now() + timedelta(seconds=1))


async def test_lost_answer_is_retried_and_not_stored_twice(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    """The server stores the upload, the connection drops before the phone hears that it is
    done: the queue asks again and sends the same bytes, the service answers done with the
    stored image."""
    console = ConsoleLog()
    console.allow(r"ERR_CONNECTION_RESET")
    photo = make_phone_jpeg(tmp_path / "IMG_0100.jpg", name="astronaut", orientation=6)

    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        # Downscaled in the page: Playwright reads a picked file's bytes as empty.
        room = await create_room(http, "Team offsite", downscale_uploads=True)
        context = await phone_context(browser, PHONE_390)
        page = console.watch(await context.new_page(), "phone")
        await page.clock.install()
        await open_room(page, room)
        await join(page, "Noor")
        await pause_clock(page)

        bodies: list[bytes] = []

        async def keep_body(route: Route) -> None:
            bodies.append(uploaded_file(route.request))
            await route.continue_()

        uploads = UploadEnds(settle=True, lose=1)
        await uploads.watch(page)
        await page.route(UPLOAD_BODY_URL, keep_body)
        await pick_photos(page, [photo])
        row = upload_rows(page).first
        await expect(row).to_have_attribute("data-state", "retrying", timeout=UPLOAD_TIMEOUT_MS)
        await expect(row).to_contain_text(re.compile(r"Connection lost\. Retrying in \d+ s"))
        await expect(row.get_by_test_id("upload-retry")).to_have_text("Retry now")
        # The server did store it: the room (and the wall) already show it.
        assert uploads.ends == ["done"]
        stored = uploads.images[0]
        await expect(page.locator(f'#gallery [data-image-id="{stored["id"]}"]')).to_be_visible()
        await screenshot(page, "retrying")

        await page.clock.fast_forward("00:02")  # past the first backoff (at most 1 s)
        await expect(row).to_have_attribute("data-state", "done", timeout=UPLOAD_TIMEOUT_MS)
        await expect(row).to_contain_text("Shared with the room · on the wall")
        await expect(row).to_have_attribute("data-image-id", str(stored["id"]))
        await expect(row).to_have_attribute("data-attempts", "2")

        assert uploads.ends == ["done", "done"]
        assert uploads.images[1]["id"] == stored["id"]
        assert len(bodies) == 2
        assert bodies[0], "the downscaled bytes were sent"
        assert hashlib.sha256(bodies[0]).digest() == hashlib.sha256(bodies[1]).digest()
        images = await room_images(http, room)
        assert [image["id"] for image in images] == [stored["id"]]
        await expect(page.locator("#gallery [data-testid='image']")).to_have_count(1)
        await expect(page.get_by_test_id("quota")).to_have_text("199 of 200 photos left")

        await context.close()
    assert console.network, "the dropped connection should have been reported"
    console.assert_clean()


async def test_refused_connection_then_rate_limit_are_retried_with_backoff(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    """The photo's bytes reach nothing, then the service says 429 too_many_uploads with
    Retry-After: the queue waits as long as it is told, then the upload goes through once."""
    console = ConsoleLog()
    console.allow(r"ERR_CONNECTION_REFUSED", r"status of 429")
    photo = make_phone_jpeg(tmp_path / "IMG_0200.jpg", name="rocket", orientation=1)

    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        # Downscaled in the page: Playwright reads a picked file's bytes as empty.
        room = await create_room(http, "Hackathon demo day", downscale_uploads=True)
        context = await phone_context(browser, PHONE_390)
        page = console.watch(await context.new_page(), "phone")
        await page.clock.install()
        await open_room(page, room)
        await join(page, "Sam")
        await pause_clock(page)

        bodies: list[bytes] = []

        async def flaky(route: Route) -> None:
            bodies.append(uploaded_file(route.request))
            if len(bodies) == 1:
                await route.abort("connectionrefused")
            elif len(bodies) == 2:
                await route.fulfill(
                    status=429,
                    headers={"Retry-After": "20", "Content-Type": "application/json"},
                    body=json.dumps(
                        {"error": {"code": "too_many_uploads", "message": "Slow down a little."}}
                    ),
                )
            else:
                await route.continue_()

        await UploadEnds(settle=True).watch(page)
        await page.route(UPLOAD_BODY_URL, flaky)
        await pick_photos(page, [photo])
        row = upload_rows(page).first
        await expect(row).to_have_attribute("data-state", "retrying", timeout=UPLOAD_TIMEOUT_MS)
        await expect(row).to_have_attribute("data-attempts", "1")
        assert await room_images(http, room) == []

        await page.clock.fast_forward("00:02")
        await expect(row).to_have_attribute("data-attempts", "2")
        await expect(row).to_contain_text(
            re.compile(r"Too many uploads at once\. Retrying in 2[01] s")
        )
        # Retry-After is a floor: 15 s later it is still waiting.
        await page.clock.fast_forward("00:15")
        await expect(row).to_contain_text(re.compile(r"Retrying in [56] s"))
        await expect(row).to_have_attribute("data-attempts", "2")
        await page.clock.fast_forward("00:07")
        await expect(row).to_have_attribute("data-state", "done", timeout=UPLOAD_TIMEOUT_MS)
        await expect(row).to_have_attribute("data-attempts", "3")

        assert len(bodies) == 3 and len(set(bodies)) == 1, "every attempt sends the same bytes"
        assert bodies[0], "the downscaled bytes were sent"
        assert len(await room_images(http, room)) == 1

        await context.close()
    console.assert_clean()


async def test_offline_uploads_go_when_back_online_and_retry_all_after_giving_up(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    console = ConsoleLog()
    console.allow(r"ERR_INTERNET_DISCONNECTED", r"ERR_CONNECTION_RESET", r"WebSocket connection to")
    photos = [
        make_phone_jpeg(tmp_path / f"IMG_03{n}.jpg", name=name, size=(2000, 1500), orientation=1)
        for n, name in enumerate(("coffee", "chelsea", "astronaut"))
    ]

    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await create_room(http, "Garden party")
        context = await phone_context(browser, PHONE_390)
        page = console.watch(await context.new_page(), "phone")
        await page.clock.install()
        await open_room(page, room)
        await join(page, "Iris")
        await pause_clock(page)
        rows = upload_rows(page)

        await UploadEnds(settle=True).watch(page)

        # --- Offline: the photo waits for the network, and goes the moment it is back. ---------
        await context.set_offline(True)
        await pick_photos(page, photos[:1])
        first = rows.first
        await expect(first).to_have_attribute("data-state", "offline", timeout=UPLOAD_TIMEOUT_MS)
        await expect(first).to_contain_text("You're offline")
        await expect(page.get_by_test_id("upload-summary")).to_contain_text("1 waiting to retry")
        await screenshot(page, "offline")
        await context.set_offline(False)  # no clock moves: the "online" event alone sends it
        await expect(first).to_have_attribute("data-state", "done", timeout=UPLOAD_TIMEOUT_MS)
        await expect(first).to_have_attribute("data-attempts", "2")
        assert len(await room_images(http, room)) == 1

        # --- A connection that keeps dropping: the queue gives up after its retries. ------------
        dropped: list[str] = []

        async def drop(route: Route) -> None:
            dropped.append(route.request.url)
            await route.abort("connectionreset")

        await page.route(UPLOAD_BODY_URL, drop)
        await pick_photos(page, photos[1:])
        failing = page.locator('[data-testid="upload-item"]:not([data-state="done"])')
        await expect(failing).to_have_count(2)
        for attempt in range(1, 10):
            for row in await failing.all():
                await expect(row).to_have_attribute(
                    "data-attempts", str(attempt), timeout=UPLOAD_TIMEOUT_MS
                )
            if attempt < 9:
                await expect(failing.and_(page.locator('[data-state="retrying"]'))).to_have_count(2)
                await page.clock.fast_forward("01:05")  # past the longest backoff (60 s)
        gave_up = page.locator('[data-testid="upload-item"][data-state="failed"]')
        await expect(gave_up).to_have_count(2)
        await expect(gave_up.first).to_contain_text("Couldn't reach ImageShark")
        retry_all = page.get_by_test_id("retry-all")
        await expect(retry_all).to_have_text("Retry all (2)")
        await expect(page.get_by_test_id("upload-summary")).to_contain_text("2 failed")
        await screenshot(page, "failed")
        # Nothing more is sent by itself, however long the guest waits.
        await page.clock.fast_forward("10:00")
        await expect(gave_up).to_have_count(2)
        assert len(dropped) == 18

        # --- The network is fine again; the guest taps "Retry all". -----------------------------
        await page.unroute(UPLOAD_BODY_URL)
        await retry_all.click()
        for row in await rows.all():
            await expect(row).to_have_attribute("data-state", "done", timeout=UPLOAD_TIMEOUT_MS)
        await expect(retry_all).to_be_hidden()
        await expect(page.get_by_test_id("upload-summary")).to_have_text("3 shared with the room")
        assert len(await room_images(http, room)) == 3

        await context.close()
    console.assert_clean()
