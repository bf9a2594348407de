"""No lost work on a phone: photos on their way are kept in the browser's IndexedDB and sent on
return after a reload or a closed tab (exactly once each: a photo the server stored but whose
answer was lost ends done with the same image), cancelling one removes it for good, and the
guest can change their name after uploading.

Uploads are held "in flight" with ``page.route`` on the direct flow's requests (the photo's
bytes, or the state poll of one already stored): the handler keeps the request until the test
releases it (after the reload), so nothing depends on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Error, Page, Route, expect

from tests.e2e.guest_session import (
    ASK_URL,
    PHONE_390,
    UPLOAD_BODY_URL,
    UPLOAD_STATE_URL,
    UPLOAD_TIMEOUT_MS,
    ConsoleLog,
    create_room,
    join,
    open_room,
    phone_context,
    pick_photos,
    polled_state,
    room_images,
    upload_rows,
)
from tests.photos import make_phone_jpeg

# How many photos this page keeps in IndexedDB for any guest (a promise, so it can be awaited
# by wait_for_function).
STORED_COUNT_JS = """() => new Promise((resolve) => {
  const open = indexedDB.open("imageshark-pending", 1);
  open.onsuccess = () => {
    const db = open.result;
    if (!db.objectStoreNames.contains("uploads")) { db.close(); resolve(0); return; }
    const count = db.transaction("uploads").objectStore("uploads").count();
    count.onsuccess = () => { db.close(); resolve(count.result); };
  };
  open.onerror = () => resolve(-1);
})"""


async def wait_stored(page: Page, count: int) -> None:
    """Wait until exactly ``count`` photos are kept in the page's IndexedDB (each poll starts a
    count and looks at the last one finished)."""
    await page.wait_for_function(
        f"""() => {{
            window.__storedCount ??= {{value: null}};
            ({STORED_COUNT_JS})().then((value) => {{ window.__storedCount.value = value; }});
            return window.__storedCount.value === {count};
        }}""",
        polling=100,
        timeout=UPLOAD_TIMEOUT_MS,
    )


class HeldUploads:
    """``page.route`` handlers (:meth:`watch`) holding the first ``hold`` uploads until
    :meth:`release`.

    The first ``reach_server`` of them are sent and processed first (stored there, only the
    answer of their state poll held back: an interrupted-but-stored upload); the others'
    bytes are held on the wire. Later uploads pass untouched.
    """

    def __init__(self, hold: int, reach_server: int = 0) -> None:
        self.hold = hold
        self.reach_server = reach_server
        self.bodies = 0
        self.held_polls = 0
        self.ready = 0
        self.ends: list[str] = []
        self.all_held = asyncio.Event()
        self._released = asyncio.Event()

    async def watch(self, page: Page) -> None:
        """Route the page's byte transfers and state polls through this."""
        await page.route(UPLOAD_BODY_URL, self.handle_body)
        await page.route(UPLOAD_STATE_URL, self.handle_state)

    async def handle_body(self, route: Route) -> None:
        self.bodies += 1
        if self.bodies <= self.reach_server or self.bodies > self.hold:
            await route.continue_()
            return
        await self._hold(route)

    async def handle_state(self, route: Route) -> None:
        if route.request.method != "GET" or self.held_polls >= self.reach_server:
            await route.continue_()
            return
        self.held_polls += 1
        _, state = await polled_state(route, settle=True)
        self.ends.append(state["status"] if state else "unanswered")
        await self._hold(route)

    async def _hold(self, route: Route) -> None:
        self.ready += 1
        if self.ready == self.hold:
            self.all_held.set()
        await self._released.wait()
        # The page that sent it reloaded or closed: the request is usually gone already.
        with contextlib.suppress(Error):
            await route.abort("connectionreset")

    def release(self) -> None:
        self._released.set()


def photos(tmp_path: Path, count: int) -> list[Path]:
    names = ["astronaut", "rocket", "coffee", "cat"]
    return [
        make_phone_jpeg(tmp_path / f"IMG_{index:04d}.jpg", name=names[index])
        for index in range(count)
    ]


async def pick_captioned(page: Page, pictures: list[Path]) -> list[str]:
    """Pick each photo by itself with its own caption; returns the captions in order."""
    captions = []
    for index, picture in enumerate(pictures):
        caption = f"photo {index + 1}"
        await page.get_by_test_id("caption-input").fill(caption)
        await pick_photos(page, [picture])
        captions.append(caption)
    return captions


async def test_reload_mid_upload_sends_every_pending_photo_once(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    """Two uploads in flight (one already stored by the server, its answer held) and one
    queued when the page reloads: after the reload the page says 3 photos were waiting, sends
    them, and the room ends with exactly the three photos picked."""
    console = ConsoleLog()
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await create_room(http, "Wedding night", downscale_uploads=True)
        context = await phone_context(browser, PHONE_390)
        page = console.watch(await context.new_page(), "phone")
        await open_room(page, room)
        await join(page, "Noor")

        held = HeldUploads(hold=2, reach_server=1)
        await held.watch(page)
        captions = await pick_captioned(page, photos(tmp_path, 3))
        await asyncio.wait_for(held.all_held.wait(), UPLOAD_TIMEOUT_MS / 1000)
        await wait_stored(page, 3)
        assert held.ends == ["done"]
        stored_first = await room_images(http, room)
        assert [image["caption"] for image in stored_first] == ["photo 1"]

        await page.reload()
        held.release()
        await expect(page.get_by_test_id("restored-notice")).to_have_text(
            "3 photos were waiting and are being sent now."
        )
        rows = upload_rows(page)
        await expect(rows).to_have_count(3)
        for index in range(3):
            await expect(rows.nth(index)).to_have_attribute(
                "data-state", "done", timeout=UPLOAD_TIMEOUT_MS
            )
        await wait_stored(page, 0)
        await expect(page.get_by_test_id("restored-notice")).to_be_hidden()

        images = await room_images(http, room)
        assert sorted(image["caption"] for image in images) == captions
        # The photo stored before the reload is the same image, not a second copy.
        assert stored_first[0]["id"] in [image["id"] for image in images]
        await expect(page.locator("#gallery [data-testid='image']")).to_have_count(3)
        await context.close()
    console.assert_clean()


async def test_closed_tab_sends_pending_photos_on_return(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    """The tab closes while two photos are on their way: opening the room again in the same
    browser sends them."""
    console = ConsoleLog()
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await create_room(http, "Conference")
        context = await phone_context(browser, PHONE_390)
        page = console.watch(await context.new_page(), "phone")
        await open_room(page, room)
        await join(page, "Sam")
        held = HeldUploads(hold=2)
        await held.watch(page)
        captions = await pick_captioned(page, photos(tmp_path, 2))
        await asyncio.wait_for(held.all_held.wait(), UPLOAD_TIMEOUT_MS / 1000)
        await wait_stored(page, 2)
        await page.close()
        held.release()
        assert await room_images(http, room) == []

        again = console.watch(await context.new_page(), "phone again")
        await open_room(again, room)
        await expect(again.get_by_test_id("identity")).to_have_text("Uploading as Sam")
        await expect(again.get_by_test_id("restored-notice")).to_have_text(
            "2 photos were waiting and are being sent now."
        )
        rows = upload_rows(again)
        await expect(rows).to_have_count(2)
        for index in range(2):
            await expect(rows.nth(index)).to_have_attribute(
                "data-state", "done", timeout=UPLOAD_TIMEOUT_MS
            )
        await wait_stored(again, 0)
        images = await room_images(http, room)
        assert sorted(image["caption"] for image in images) == captions
        await context.close()
    console.assert_clean()


async def test_cancelled_pending_photo_is_gone_for_good(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    """Of three photos (two in flight, one waiting), the guest cancels the waiting one: it
    leaves the browser's storage, does not come back after a reload, and never reaches the room."""
    console = ConsoleLog()
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await create_room(http, "Birthday")
        context = await phone_context(browser, PHONE_390)
        page = console.watch(await context.new_page(), "phone")
        await open_room(page, room)
        await join(page, "Ada")
        held = HeldUploads(hold=2)
        await held.watch(page)
        await pick_captioned(page, photos(tmp_path, 3))
        await asyncio.wait_for(held.all_held.wait(), UPLOAD_TIMEOUT_MS / 1000)
        await wait_stored(page, 3)

        rows = upload_rows(page)
        waiting = rows.filter(has_text="IMG_0002.jpg")
        await expect(waiting).to_have_attribute("data-state", "queued")
        await waiting.get_by_test_id("upload-remove").click()
        await expect(rows).to_have_count(2)
        await wait_stored(page, 2)

        await page.reload()
        held.release()
        await expect(page.get_by_test_id("restored-notice")).to_have_text(
            "2 photos were waiting and are being sent now."
        )
        rows = upload_rows(page)
        await expect(rows).to_have_count(2)
        for index in range(2):
            await expect(rows.nth(index)).to_have_attribute(
                "data-state", "done", timeout=UPLOAD_TIMEOUT_MS
            )
        await wait_stored(page, 0)
        images = await room_images(http, room)
        assert sorted(image["caption"] for image in images) == ["photo 1", "photo 2"]
        await context.close()
    console.assert_clean()


async def test_photo_refused_for_good_stays_failed_until_dismissed(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    """The service refuses a photo in a way retrying cannot fix (413 when it is asked for the
    upload): after a reload the photo
    is still listed as failed with its reason, not sent again; dismissing it forgets it."""
    console = ConsoleLog()
    console.allow(r"status of 413")
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await create_room(http, "Gala")
        context = await phone_context(browser, PHONE_390)
        page = console.watch(await context.new_page(), "phone")
        await open_room(page, room)
        await join(page, "Kim")
        sent: list[str] = []

        async def too_large(route: Route) -> None:
            sent.append(route.request.url)
            await route.fulfill(
                status=413,
                json={"error": {"code": "file_too_large", "message": "The photo is too large."}},
            )

        await page.route(ASK_URL, too_large)
        await pick_photos(page, photos(tmp_path, 1))
        row = upload_rows(page).first
        await expect(row).to_have_attribute("data-state", "failed", timeout=UPLOAD_TIMEOUT_MS)
        await wait_stored(page, 1)

        await page.reload()
        row = upload_rows(page).first
        await expect(row).to_have_attribute("data-state", "failed")
        await expect(row).to_contain_text("too large")
        await expect(page.get_by_test_id("restored-notice")).to_be_hidden()
        assert len(sent) == 1
        await row.get_by_test_id("upload-remove").click()
        await expect(upload_rows(page)).to_have_count(0)
        await wait_stored(page, 0)
        await page.reload()
        await expect(page.get_by_test_id("identity")).to_have_text("Uploading as Kim")
        await expect(upload_rows(page)).to_have_count(0)
        assert len(sent) == 1
        assert await room_images(http, room) == []
        await context.close()
    assert console.network, "the refusal should have been reported"
    console.assert_clean()


async def test_rename_after_an_upload_keeps_the_guest(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    """The "Change name" button stays offered after the first photo; the new name is the
    same guest (in a passcode room, without typing the passcode again), so the photo already
    shared lists the new name and the quota goes on."""
    console = ConsoleLog()
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await create_room(http, "Team offsite", passcode="tulip-42")
        context = await phone_context(browser, PHONE_390)
        page = console.watch(await context.new_page(), "phone")
        await open_room(page, room)
        await join(page, "Noor", passcode="tulip-42")
        await pick_photos(page, photos(tmp_path, 1))
        await expect(upload_rows(page).first).to_have_attribute(
            "data-state", "done", timeout=UPLOAD_TIMEOUT_MS
        )
        await expect(page.get_by_test_id("quota")).to_have_text("199 of 200 photos left")
        [before] = await room_images(http, room)

        change = page.get_by_role("button", name="Change name")
        await expect(change).to_be_visible()
        await change.click()
        await expect(page.get_by_test_id("passcode-input")).to_be_hidden()
        await page.get_by_test_id("name-input").fill("Noor B.")
        await page.get_by_role("button", name="Save name").click()
        await expect(page.get_by_test_id("identity")).to_have_text("Uploading as Noor B.")
        await expect(page.get_by_role("button", name="Change name")).to_be_visible()
        await expect(page.get_by_test_id("quota")).to_have_text("199 of 200 photos left")

        [after] = await room_images(http, room)
        assert after["id"] == before["id"]
        assert after["participant_id"] == before["participant_id"]
        assert after["uploader_name"] == "Noor B."
        await context.close()
    console.assert_clean()


async def test_without_indexeddb_the_page_says_so_and_still_uploads(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    """A browser without IndexedDB (some private modes): the page warns that a reload would
    lose unsent photos, and sharing still works."""
    console = ConsoleLog()
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await create_room(http, "Private mode")
        context = await phone_context(browser, PHONE_390)
        await context.add_init_script(
            "Object.defineProperty(window, 'indexedDB', {value: undefined})"
        )
        page = console.watch(await context.new_page(), "phone")
        await open_room(page, room)
        await expect(page.get_by_test_id("storage-unavailable")).to_be_visible()
        await join(page, "Lee")
        await pick_photos(page, photos(tmp_path, 1))
        await expect(upload_rows(page).first).to_have_attribute(
            "data-state", "done", timeout=UPLOAD_TIMEOUT_MS
        )
        assert len(await room_images(http, room)) == 1
        await context.close()
    console.assert_clean()
