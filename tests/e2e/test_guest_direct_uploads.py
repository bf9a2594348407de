"""A guest on an S3-backed room (moto's server) shares a 12 MP camera photo and its bytes go
straight from the browser to the bucket: the service's ASGI app counts the request body bytes
it receives, and they stay far below the photo's size, while the bucket holds the original
byte for byte and the wall (a second browser context) shows the photo, loaded from the store
through the presigned redirect (so the page's CSP lets it connect to and load from the store).

Real uvicorn, real Chromium, moto in server mode with the bucket CORS a host sets (README,
"Object storage"). Synchronisation is Playwright's auto-waiting; no sleeps.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from playwright.async_api import Browser, Request, Route, expect

from tests.conftest import SettingsFactory, serve_asgi
from tests.e2e.guest_session import (
    UPLOAD_TIMEOUT_MS,
    ConsoleLog,
    create_room,
    image_card,
    is_upload,
    join,
    open_room,
    phone_context,
    pick_photos,
    room_images,
    upload_rows,
)
from tests.e2e.host_wall_session import open_wall, wall_tiles
from tests.object_store import Bucket
from tests.photos import make_phone_jpeg
from web.app import create_app

PREFIX = "photos"


@dataclass
class CountingServer:
    """A live server whose ASGI app counts the HTTP request body bytes it receives."""

    base_url: str
    received: list[int]

    @property
    def body_bytes(self) -> int:
        return sum(self.received)


def counting(app: Any, received: list[int]) -> Any:
    """``app`` wrapped so that every ``http.request`` body chunk's length is appended to
    ``received`` (WebSocket and lifespan messages pass untouched)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def counted() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                received.append(len(message.get("body", b"")))
            return message

        await app(scope, counted, send)

    return wrapped


def set_bucket_cors(bucket: Bucket, origin: str) -> None:
    """The CORS configuration README documents, for the service's origin."""
    bucket.server.client().put_bucket_cors(
        Bucket=bucket.name,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": [origin],
                    "AllowedMethods": ["POST", "PUT", "GET"],
                    "AllowedHeaders": ["Content-Type"],
                    "ExposeHeaders": ["ETag"],
                    "MaxAgeSeconds": 3600,
                }
            ]
        },
    )


@pytest_asyncio.fixture(loop_scope="session")
async def s3_live_server(
    make_settings: SettingsFactory, s3_bucket: Bucket
) -> AsyncIterator[CountingServer]:
    received: list[int] = []
    app = counting(
        create_app(make_settings(**s3_bucket.settings(PREFIX)), renditions_on_demand=True), received
    )
    async for base_url, _ in serve_asgi(app):
        set_bucket_cors(s3_bucket, base_url)
        yield CountingServer(base_url, received)


async def test_guest_photo_goes_straight_to_the_bucket_and_reaches_the_wall(
    s3_live_server: CountingServer, s3_bucket: Bucket, browser: Browser, tmp_path: Path
) -> None:
    photo = make_phone_jpeg(tmp_path / "IMG_0001.jpg", name="coffee", size=(4000, 3000))
    size = photo.stat().st_size
    assert size > 1_000_000
    console = ConsoleLog()
    async with httpx.AsyncClient(base_url=s3_live_server.base_url, timeout=30) as http:
        room = await create_room(http, "Bucket party", downscale_uploads=False)
        wall_context = await phone_context(browser)
        wall = console.watch(await wall_context.new_page(), "wall")
        await open_wall(wall, room)
        context = await phone_context(browser)
        page = console.watch(await context.new_page(), "phone")
        sent: list[Request] = []
        page.on("request", lambda request: sent.append(request))
        await open_room(page, room)
        await page.get_by_test_id("downscale-input").uncheck()
        await join(page, "Grace")

        before = s3_live_server.body_bytes
        await pick_photos(page, [photo])
        row = upload_rows(page).first
        await expect(row).to_contain_text(
            "Shared with the room · on the wall", timeout=UPLOAD_TIMEOUT_MS
        )
        through_service = s3_live_server.body_bytes - before

        # The bytes did not pass through the service: a few JSON bodies, not the photo.
        assert through_service < 10_000, through_service
        assert not any(r.method == "POST" and r.url.endswith("/images") for r in sent)
        assert len([r for r in sent if is_upload(r)]) == 1
        to_store = [r for r in sent if r.method == "POST" and s3_bucket.name in r.url]
        assert len(to_store) == 1, [r.url for r in sent]
        assert to_store[0].url.startswith(s3_bucket.server.endpoint)

        images = await room_images(http, room)
        assert len(images) == 1
        key = images[0]["url"].split("/")[2]
        head = s3_bucket.server.client().head_object(
            Bucket=s3_bucket.name, Key=f"{PREFIX}/{key}/original"
        )
        assert head["ContentLength"] == size
        assert f"{PREFIX}/{key}/display.jpg" in s3_bucket.object_keys()

        await expect(image_card(page, images[0]["id"])).to_be_visible()
        await expect(page.get_by_test_id("upload-summary")).to_have_text("1 shared with the room")
        tile = wall_tiles(wall).first
        await expect(tile).to_be_visible(timeout=UPLOAD_TIMEOUT_MS)
        await expect(tile).to_have_attribute("data-image-id", str(images[0]["id"]))
        loaded = await tile.locator("img").first.evaluate(
            "img => img.decode().then(() => img.naturalWidth)"
        )
        assert loaded > 0
        console.assert_clean()
        await context.close()
        await wall_context.close()


async def test_direct_upload_retries_a_failed_store_and_a_lost_answer_without_a_copy(
    s3_live_server: CountingServer, s3_bucket: Bucket, browser: Browser, tmp_path: Path
) -> None:
    """The bucket answers the first form 503: the queue retries by itself. The first state
    poll's answer is then lost on the network: the retry asks again and sends the same bytes,
    and the service answers done with the image it already stored: one image, shown as the
    guest's own ("Shared", not "Already shared")."""
    photo = make_phone_jpeg(tmp_path / "IMG_0002.jpg", name="rocket", size=(1600, 1200))
    console = ConsoleLog()
    console.allow(s3_bucket.name, r"/uploads/[^/]+$")
    async with httpx.AsyncClient(base_url=s3_live_server.base_url, timeout=30) as http:
        room = await create_room(http, "Flaky bucket", downscale_uploads=False)
        context = await phone_context(browser)
        page = console.watch(await context.new_page(), "phone")
        await open_room(page, room)
        await join(page, "Ada")

        store_posts: list[str] = []

        async def store(route: Route) -> None:
            store_posts.append(route.request.url)
            if len(store_posts) == 1:
                await route.fulfill(status=503, body="<Error><Code>SlowDown</Code></Error>")
            else:
                await route.continue_()

        polls: list[str] = []

        async def state(route: Route) -> None:
            if route.request.method != "GET":
                await route.continue_()
                return
            polls.append(route.request.url)
            if len(polls) == 1:
                await route.abort()
            else:
                await route.continue_()

        await page.route(f"{s3_bucket.server.endpoint}/**", store)
        await page.route(re.compile(r"/api/rooms/[^/]+/uploads/[^/]+$"), state)
        await pick_photos(page, [photo])
        row = upload_rows(page).first
        await expect(row).to_contain_text(
            "Shared with the room · on the wall", timeout=UPLOAD_TIMEOUT_MS
        )
        assert len(store_posts) == 3, store_posts  # refused, stored, the same bytes again
        assert len(polls) >= 2
        images = await room_images(http, room)
        assert len(images) == 1
        await expect(page.get_by_test_id("upload-summary")).to_have_text("1 shared with the room")
        assert console.network, "the refused form and the lost answer were seen"
        console.assert_clean()
        await context.close()
