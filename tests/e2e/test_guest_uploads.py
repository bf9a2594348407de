"""A guest on a phone shares camera photos: joining, the upload queue with its progress, the
browser's downscaling (smaller, upright, same detail on the wall), "My uploads", the photo
viewer with its full-quality download, deleting one's own photo, and the per-guest quota.

Real uvicorn (``live_server``), real Chromium with a phone viewport, 12 MP camera JPEGs from
``tests/photos.py``. Synchronisation is Playwright's auto-waiting and response/request events;
no sleeps. Screenshots: ``test-artifacts/screenshots/guest-<state>.png``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from playwright.async_api import Browser, Request, Response, Route, expect

from tests.e2e.guest_session import (
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
    is_upload,
    join,
    open_room,
    phone_context,
    pick_photos,
    room_images,
    screenshot,
    upload_rows,
)
from tests.photos import assert_upright, make_image_bytes, make_phone_jpeg, reference_photo


async def test_guest_shares_photos_downscaled_upright_and_manages_them(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    base = live_server.base_url
    console = ConsoleLog()
    photos = {
        "coffee": make_phone_jpeg(tmp_path / "IMG_0001.jpg", name="coffee", orientation=6),
        "chelsea": make_phone_jpeg(tmp_path / "IMG_0002.jpg", name="chelsea", orientation=1),
        "rocket": make_phone_jpeg(tmp_path / "IMG_0003.jpg", name="rocket", orientation=3),
    }

    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        room = await create_room(http, "Lena & Tom's wedding", downscale_uploads=True)
        context = await phone_context(browser, PHONE_390)
        page = console.watch(await context.new_page(), "phone")

        await open_room(page, room)
        await expect(page.get_by_test_id("name-input")).to_be_focused()
        await expect(page.get_by_test_id("downscale-input")).to_be_checked()
        await expect(page.get_by_test_id("downscale-hint")).to_have_text(
            "Photos are made smaller because the host asked."
        )
        await screenshot(page, "join")

        await join(page, "Grace")
        await expect(page.get_by_test_id("quota")).to_have_text("200 of 200 photos left")
        await expect(page.locator("#live")).to_have_attribute("data-state", "live")
        await screenshot(page, "joined")

        # Hold the first photos' bytes on the wire so the "uploading" state can be seen; the others
        # wait their turn (two at a time).
        sent: list[Request] = []
        page.on("request", lambda request: sent.append(request) if is_upload(request) else None)
        puts: list[Response] = []
        page.on(
            "response",
            lambda response: (
                puts.append(response)
                if response.request.method == "PUT" and UPLOAD_BODY_URL.search(response.url)
                else None
            ),
        )
        release = asyncio.Event()

        async def hold_first(route: Route) -> None:
            if not release.is_set():
                await release.wait()
            await route.continue_()

        await page.route(UPLOAD_BODY_URL, hold_first)
        await pick_photos(page, photos.values())
        rows = upload_rows(page)
        await expect(rows).to_have_count(3)
        await expect(
            page.locator('[data-testid="upload-item"][data-state="uploading"]')
        ).to_have_count(2, timeout=UPLOAD_TIMEOUT_MS)
        await expect(
            page.locator('[data-testid="upload-item"][data-state="queued"]')
        ).to_have_count(1)
        await expect(page.get_by_test_id("upload-summary")).to_contain_text("Sharing 3 photos")
        await screenshot(page, "uploading")
        release.set()

        for row in await rows.all():
            await expect(row).to_have_attribute("data-state", "done", timeout=UPLOAD_TIMEOUT_MS)
            await expect(row).to_contain_text("Shared with the room · on the wall")
            await expect(row).to_contain_text("resized")
        await page.unroute(UPLOAD_BODY_URL)
        assert len(sent) == 3, [r.url for r in sent]
        # Each photo's bytes (the page's downscale) went to the service's own PUT with the
        # size and type the page declared; the service's ETag is their SHA-256.
        assert len(puts) == 3, [r.url for r in puts]
        bodies = [put.request.post_data_buffer or b"" for put in puts]
        declared = [request.post_data_json for request in sent]
        assert sorted(len(body) for body in bodies) == sorted(d["size"] for d in declared)
        assert {d["content_type"] for d in declared} == {"image/jpeg"}
        for put, body in zip(puts, bodies, strict=True):
            assert put.status == 204
            assert put.headers["etag"] == f'"{hashlib.sha256(body).hexdigest()}"'
        await expect(page.get_by_test_id("upload-summary")).to_have_text("3 shared with the room")
        await expect(page.get_by_test_id("quota")).to_have_text("197 of 200 photos left")

        images = await room_images(http, room)
        assert len(images) == 3
        assert all(image["uploader_name"] == "Grace" for image in images)
        for image in images:
            await expect(image_card(page, image["id"])).to_be_visible()
            await expect(
                image_card(page, image["id"]).get_by_test_id("delete-image")
            ).to_be_visible()
        await expect(page.locator("#photo-count")).to_have_text("3")
        await assert_no_horizontal_overflow(page)
        await screenshot(page, "uploaded")

        # What the server stored is the browser's downscale, byte for byte: smaller than the
        # camera file, 3200 px on the long side, upright (EXIF orientation applied before
        # drawing).
        stored_digests = set()
        for image in images:
            original = await http.get(
                f"/api/rooms/{room['token']}/images/{image['id']}/original",
                headers=host_headers(room),
            )
            assert original.status_code == 200, original.text
            stored_digests.add(hashlib.sha256(original.content).hexdigest())
            with Image.open(io.BytesIO(original.content)) as stored:
                stored.load()
                assert stored.format == "JPEG"
                assert max(stored.size) == 3200, stored.size
                assert stored.size == (3200, 2400), "landscape, upright"
                assert stored.getexif().get(0x0112) in (None, 1), "no rotation left to apply"
                matches = []
                for name in photos:
                    try:
                        assert_upright(stored, reference_photo(name))
                    except AssertionError:
                        continue
                    matches.append(name)
            assert len(matches) == 1, f"image {image['id']} matches {matches}"
            assert len(original.content) < photos[matches[0]].stat().st_size
        assert stored_digests == {hashlib.sha256(body).hexdigest() for body in bodies}

        # "My uploads" and the server's own list agree.
        mine = await page.evaluate(
            "token => fetch(`/api/rooms/${token}/images?mine=true`).then(r => r.json())",
            room["token"],
        )
        assert sorted(item["id"] for item in mine["items"]) == sorted(i["id"] for i in images)

        # The viewer: full screen, arrows move, Escape closes, focus goes back to the thumbnail.
        newest, *_ = sorted(images, key=lambda image: -image["id"])
        opener = image_card(page, newest["id"]).get_by_role(
            "button", name=re.compile("^Open photo")
        )
        await opener.click()
        viewer = page.get_by_test_id("lightbox")
        await expect(viewer).to_be_visible()
        await expect(viewer.locator("img")).to_have_attribute("src", newest["url"])
        download = viewer.get_by_test_id("lightbox-download")
        await expect(download).to_have_text("Download full quality")
        await expect(download).to_have_attribute(
            "href", f"/api/rooms/{room['token']}/images/{newest['id']}/download"
        )
        await expect(download).to_have_attribute("download", "")
        await screenshot(page, "lightbox", full_page=False)
        await page.keyboard.press("ArrowRight")
        await expect(viewer.locator("img")).not_to_have_attribute("src", newest["url"])
        full = await page.request.get(base + (await download.get_attribute("href") or ""))
        assert full.status == 200
        assert full.headers["content-type"] == "image/jpeg"
        assert "attachment" in full.headers.get("content-disposition", "")
        await page.keyboard.press("Escape")
        await expect(viewer).to_be_hidden()
        await expect(opener).to_be_focused()

        # Deleting one's own photo asks first, then it is gone everywhere and the slot is back.
        doomed_row = page.locator(f'[data-testid="upload-item"][data-image-id="{newest["id"]}"]')
        await doomed_row.get_by_test_id("upload-delete").click()
        dialog = page.get_by_test_id("confirm-dialog")
        await expect(dialog).to_be_visible()
        await screenshot(page, "confirm-delete", full_page=False)
        await dialog.get_by_role("button", name="Cancel").click()
        await expect(doomed_row).to_have_count(1)
        await doomed_row.get_by_test_id("upload-delete").click()
        await page.get_by_test_id("confirm-button").click()
        await expect(doomed_row).to_have_count(0)
        await expect(image_card(page, newest["id"])).to_have_count(0)
        await expect(page.get_by_test_id("quota")).to_have_text("198 of 200 photos left")
        assert len(await room_images(http, room)) == 2

        # A reload keeps the guest (cookie) and rebuilds "My uploads" from the server.
        await page.reload()
        await expect(page.get_by_test_id("identity")).to_have_text("Uploading as Grace")
        await expect(upload_rows(page)).to_have_count(2)
        for row in await upload_rows(page).all():
            await expect(row).to_have_attribute("data-state", "done")
        await expect(page.get_by_test_id("quota")).to_have_text("198 of 200 photos left")
        stored_names = await page.evaluate("() => Object.keys(localStorage)")
        values = await page.evaluate("() => Object.values(localStorage).join(' ')")
        assert "participant_key" not in values, stored_names

        await context.close()
    console.assert_clean()


async def test_quota_reached_is_final_and_not_retried(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    base = live_server.base_url
    console = ConsoleLog()
    photos = [
        make_phone_jpeg(tmp_path / f"IMG_{n}.jpg", name=name, size=(1600, 1200), orientation=1)
        for n, name in enumerate(("coffee", "chelsea", "astronaut"))
    ]

    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        room = await create_room(http, "Quiz night", max_uploads_per_guest=2)
        context = await phone_context(browser, PHONE_360)
        page = console.watch(await context.new_page(), "phone")
        await page.clock.install()
        await open_room(page, room)
        await join(page, "Ada")
        await expect(page.get_by_test_id("quota")).to_have_text("2 of 2 photos left")

        asks: list[Request] = []
        page.on("request", lambda request: asks.append(request) if is_upload(request) else None)
        uploads = UploadEnds()
        await uploads.watch(page)
        await pick_photos(page, photos)
        rows = upload_rows(page)
        await expect(rows).to_have_count(3)
        refused = page.locator('[data-testid="upload-item"][data-state="failed"]')
        await expect(refused).to_have_count(1, timeout=UPLOAD_TIMEOUT_MS)
        await expect(refused).to_contain_text("the most this room allows per guest")
        await expect(page.locator('[data-testid="upload-item"][data-state="done"]')).to_have_count(
            2
        )
        await expect(page.get_by_test_id("quota")).to_have_text("0 of 2 photos left")
        await expect(page.get_by_test_id("file-input")).to_be_disabled()
        await expect(page.get_by_test_id("picker-hint")).to_contain_text("Delete one of yours")
        await expect(page.get_by_test_id("upload-summary")).to_contain_text("1 failed")
        await assert_no_horizontal_overflow(page)
        await screenshot(page, "quota-reached")

        # Far past every backoff: nothing is sent again by itself.
        await page.clock.fast_forward("05:00")
        await page.evaluate("() => fetch('/healthz').then(r => r.status)")
        assert sorted(uploads.ends) == ["done", "done", "guest_quota_reached"], uploads.ends
        assert len(asks) == 3, [request.url for request in asks]
        await expect(refused).to_have_attribute("data-attempts", "1")
        assert len(await room_images(http, room)) == 2

        await context.close()
    console.assert_clean()


async def test_photo_someone_else_already_shared_is_not_claimed(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    """Two guests share the same file (a photo sent around the family chat): the room keeps one
    image, the second guest is told who shared it and gets no delete button for it."""
    console = ConsoleLog()
    photo = make_phone_jpeg(tmp_path / "family.jpg", name="chelsea", size=(1600, 1200))

    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await create_room(http, "Family reunion")
        pages = []
        for name in ("Aunt May", "Cousin Leo"):
            context = await phone_context(browser, PHONE_390)
            page = console.watch(await context.new_page(), name)
            await open_room(page, room)
            await join(page, name)
            await pick_photos(page, [photo])
            row = upload_rows(page).first
            await expect(row).to_have_attribute("data-state", "done", timeout=UPLOAD_TIMEOUT_MS)
            pages.append((context, page, row))

        (_, first, first_row), (_, second, second_row) = pages
        await expect(first_row).to_contain_text("Shared with the room · on the wall")
        await expect(first_row.get_by_test_id("upload-delete")).to_be_visible()
        await expect(second_row).to_contain_text("Already in the room, shared by Aunt May")
        await expect(second_row.get_by_test_id("upload-delete")).to_be_hidden()
        image_id = int(await second_row.get_attribute("data-image-id") or 0)
        await expect(image_card(second, image_id).get_by_test_id("delete-image")).to_have_count(0)
        await expect(second.get_by_test_id("quota")).to_have_text("200 of 200 photos left")
        images = await room_images(http, room)
        assert [image["id"] for image in images] == [image_id]
        await screenshot(second, "already-shared-by-someone-else")

        # Aunt May deletes it: it leaves the cousin's list too.
        await first_row.get_by_test_id("upload-delete").click()
        await first.get_by_test_id("confirm-button").click()
        await expect(second_row).to_have_count(0)
        await expect(image_card(second, image_id)).to_have_count(0)

        for context, _, _ in pages:
            await context.close()
    console.assert_clean()


async def test_caption_each_photo_send_originals_and_rename_first(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    """The guest fixes their name before sharing, turns downscaling off (the camera files go
    as they are), and captions each photo before it is sent. Both choices are remembered."""
    console = ConsoleLog()
    big = make_phone_jpeg(tmp_path / "cake.jpg", name="coffee", orientation=6)
    small = make_phone_jpeg(tmp_path / "dance.jpg", name="astronaut", size=(1200, 1600))

    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await create_room(http, "Birthday brunch")
        context = await phone_context(browser, PHONE_390)
        page = console.watch(await context.new_page(), "phone")
        await open_room(page, room)
        await join(page, "Robni")

        # A typo in the name: fixable before sharing (and after).
        await page.get_by_role("button", name="Change name").click()
        await expect(page.locator("#join-title")).to_have_text("Change your name")
        await expect(page.get_by_test_id("name-input")).to_be_focused()
        await page.get_by_test_id("name-input").fill("Robin")
        await page.get_by_role("button", name="Save name").click()
        await expect(page.get_by_test_id("identity")).to_have_text("Uploading as Robin")

        await page.get_by_label("Make large photos smaller before sending").uncheck()
        await page.get_by_label("Let me add a caption to each photo before sending").check()
        await pick_photos(page, [big, small])
        rows = upload_rows(page)
        await expect(rows).to_have_count(2)
        for row in await rows.all():
            await expect(row).to_have_attribute("data-state", "held", timeout=UPLOAD_TIMEOUT_MS)
        send = page.get_by_test_id("send-held")
        await expect(send).to_have_text("Share 2 photos")
        captions = {"cake.jpg": "The cake, before", "dance.jpg": "First dance"}
        for file_name, caption in captions.items():
            await page.get_by_label(f"Caption for {file_name}").fill(caption)
        await screenshot(page, "caption-each-photo")
        await send.click()
        for row in await rows.all():
            await expect(row).to_have_attribute("data-state", "done", timeout=UPLOAD_TIMEOUT_MS)
            await expect(row).not_to_contain_text("resized")
        await expect(send).to_be_hidden()
        # Renaming keeps the same guest, so it stays offered after sharing.
        await expect(page.get_by_role("button", name="Change name")).to_be_visible()

        images = await room_images(http, room)
        assert {image["caption"] for image in images} == set(captions.values())
        assert {image["uploader_name"] for image in images} == {"Robin"}
        for image in images:
            original = await http.get(
                f"/api/rooms/{room['token']}/images/{image['id']}/original",
                headers=host_headers(room),
            )
            assert original.status_code == 200
            source = big if image["caption"] == captions["cake.jpg"] else small
            sent = source.read_bytes()
            assert len(original.content) == len(sent), "sent as picked, GPS blanked in place"
            with Image.open(io.BytesIO(original.content)) as stored, Image.open(source) as picked:
                assert stored.size == picked.size and stored.tobytes() == picked.tobytes()
                assert dict(stored.getexif().get_ifd(0x8825)) == {}

        await page.reload()
        await expect(page.get_by_test_id("identity")).to_have_text("Uploading as Robin")
        await expect(page.get_by_test_id("downscale-input")).not_to_be_checked()
        await expect(page.get_by_test_id("caption-each-input")).to_be_checked()

        await context.close()
    console.assert_clean()


async def test_guest_page_sends_the_original_unresized_by_default(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    """A room with default settings on a fast connection: the page says photos go at full
    size without their location, and the stored original has the picked file's dimensions."""
    console = ConsoleLog()
    picked = make_phone_jpeg(tmp_path / "IMG_1200.jpg", name="coffee", orientation=1)
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await create_room(http, "Full size")
        context = await phone_context(browser, PHONE_390)
        page = console.watch(await context.new_page(), "phone")
        await open_room(page, room)
        await join(page, "Ines")
        await expect(page.get_by_test_id("downscale-input")).not_to_be_checked()
        await expect(page.get_by_test_id("downscale-hint")).to_have_text(
            "Photos are sent at full size."
        )
        await expect(page.get_by_test_id("location-hint")).to_have_text(
            "Location (GPS) is removed from your photos before the host gets them."
        )
        await pick_photos(page, [picked])
        row = upload_rows(page).first
        await expect(row).to_have_attribute("data-state", "done", timeout=UPLOAD_TIMEOUT_MS)
        (image,) = await room_images(http, room)
        original = await http.get(
            f"/api/rooms/{room['token']}/images/{image['id']}/original",
            headers=host_headers(room),
        )
        assert original.status_code == 200
        with Image.open(io.BytesIO(original.content)) as stored, Image.open(picked) as sent:
            assert stored.size == sent.size == (4000, 3000)
            assert stored.tobytes() == sent.tobytes()

        patched = await http.patch(
            f"/api/rooms/{room['token']}", json={"keep_location": True}, headers=host_headers(room)
        )
        assert patched.status_code == 200, patched.text
        await expect(page.get_by_test_id("location-hint")).to_have_text(
            "Photos keep their location for the host."
        )
        await context.close()
    console.assert_clean()


async def test_formats_the_browser_cannot_shrink_go_as_they_are(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    """Downscaling on: a large PNG (a screenshot, say) is sent as a 3200 px JPEG; a HEIC photo,
    which Chromium cannot decode, is sent untouched and the server still takes it."""
    console = ConsoleLog()
    heic = tmp_path / "IMG_4000.HEIC"
    heic.write_bytes(make_image_bytes("heic", name="rocket", size=(3600, 2700)))
    png = tmp_path / "Screenshot 2024-06-01.png"
    png.write_bytes(make_image_bytes("png", name="chelsea", size=(4000, 3000)))

    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await create_room(http, "Design review", downscale_uploads=True)
        context = await phone_context(browser, PHONE_360)
        page = console.watch(await context.new_page(), "phone")
        await open_room(page, room)
        await join(page, "Yuki")
        await pick_photos(page, [heic, png])
        rows = upload_rows(page)
        await expect(rows).to_have_count(2)
        for row in await rows.all():
            await expect(row).to_have_attribute("data-state", "done", timeout=UPLOAD_TIMEOUT_MS)
        await expect(rows.filter(has_text="Screenshot 2024-06-01.png")).to_contain_text("resized")
        await expect(rows.filter(has_text="IMG_4000.HEIC")).not_to_contain_text("resized")

        images = await room_images(http, room)
        assert len(images) == 2
        kinds = {}
        for image in images:
            original = await http.get(
                f"/api/rooms/{room['token']}/images/{image['id']}/original",
                headers=host_headers(room),
            )
            assert original.status_code == 200
            with Image.open(io.BytesIO(original.content)) as stored:
                kinds[stored.format] = (stored.size, original.content)
        assert kinds["JPEG"][0] == (3200, 2400)
        assert len(kinds["JPEG"][1]) < png.stat().st_size
        heif_format = next(name for name in kinds if name != "JPEG")
        assert kinds[heif_format][1] == heic.read_bytes()
        await assert_no_horizontal_overflow(page)

        await context.close()
    console.assert_clean()


async def test_room_out_of_storage_is_final_and_not_retried(
    live_server: Any, browser: Browser, tmp_path: Path
) -> None:
    console = ConsoleLog()
    photo = make_phone_jpeg(tmp_path / "IMG_1.jpg", name="coffee", size=(1600, 1200), orientation=1)
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=30) as http:
        room = await create_room(http, "Tiny room", max_bytes=1)
        context = await phone_context(browser, PHONE_360)
        page = console.watch(await context.new_page(), "phone")
        await page.clock.install()
        await open_room(page, room)
        await join(page, "Ada")
        asks: list[Request] = []
        page.on("request", lambda request: asks.append(request) if is_upload(request) else None)
        uploads = UploadEnds()
        await uploads.watch(page)
        await pick_photos(page, [photo])
        refused = page.locator('[data-testid="upload-item"][data-state="failed"]')
        await expect(refused).to_have_count(1, timeout=UPLOAD_TIMEOUT_MS)
        await expect(refused).to_contain_text("out of space")
        await page.clock.fast_forward("05:00")
        await page.evaluate("() => fetch('/healthz').then(r => r.status)")
        assert uploads.ends == ["room_storage_full"], uploads.ends
        assert len(asks) == 1, [request.url for request in asks]
        await expect(refused).to_have_attribute("data-attempts", "1")
        assert await room_images(http, room) == []
        await context.close()
    console.assert_clean()
