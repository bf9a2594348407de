"""Pieces shared by the guest-side browser tests (``test_guest_*.py``): phone contexts, console
watching, room setup over the API, and the participant page's common gestures.

Rooms are set up the way a host's scripts would: httpx against the real server, with the host
key. The phone is a Chromium context with a phone viewport, touch and ``is_mobile``; everything
a guest does goes through the page.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import (
    APIResponse,
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Route,
    ViewportSize,
    expect,
)

from tests.polling import poll_until

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
SAVE_SCREENSHOTS = os.environ.get("IMAGESHARK_TEST_SCREENSHOTS") == "1"
"""Whether the browser tests save pictures of the states they reach in :data:`SCREENSHOTS`,
for a person to look at (``IMAGESHARK_TEST_SCREENSHOTS=1 make test``). Off, none is taken:
at 0.2 s (1080p) to 0.6 s (4K) of CPU each, the suite's ~90 cost it about 20 s."""

# Uploading and rendering a 12 MP photo is real work on a shared 2-core machine.
UPLOAD_TIMEOUT_MS = 60_000
LIVE_TIMEOUT_MS = 10_000

PHONE_360: ViewportSize = {"width": 360, "height": 740}
PHONE_390: ViewportSize = {"width": 390, "height": 844}

# What Chromium prints (as console errors) for a request that failed on the network or got an
# HTTP error status. These come from the browser's network stack, not from the page's code;
# tests that provoke them on purpose allow exactly the ones they provoke.
NETWORK_MESSAGE = re.compile(r"^(Failed to load resource: |WebSocket connection to )")

# The guest page sends every photo through the direct upload flow (docs/API.md "Direct
# uploads"): ask for an upload, PUT the bytes (on the local folder, to the service's own
# signed URL), complete it, poll its state.
ASK_URL = re.compile(r"/api/rooms/[^/]+/uploads$")
"""Matches the request asking for a direct upload (``POST``), one per photo sent."""
UPLOAD_BODY_URL = re.compile(r"/api/rooms/[^/]+/uploads/[^/?]+/body\?")
"""Matches the photo's bytes (``PUT`` to the service's own signed URL, the local folder): the
request whose upload progress is the item's (for page.route and request filters)."""
UPLOAD_STATE_URL = re.compile(r"/api/rooms/[^/]+/uploads/[^/?]+$")
"""Matches the upload's state (``GET``), polled until ``done`` or ``failed``."""


def is_upload(request: Request) -> bool:
    """Whether ``request`` sends a photo: the page asking for a direct upload."""
    return request.method == "POST" and bool(ASK_URL.search(request.url))


@dataclass
class UploadEnds:
    """How each direct upload ended, as the page polled it, in order: ``"done"`` or the
    failure's code. Routed (:meth:`watch`), so an end is recorded before the page hears it.

    :param settle: hold each poll until the upload is no longer ``processing`` (re-asking the
        server every 0.1 s): a page whose fake clock is paused then never waits on its poll
        timer.
    :param lose: how many final answers to throw away (a reset connection) after recording
        them, as a network that loses the answer.
    """

    settle: bool = False
    lose: int = 0
    ends: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)

    async def watch(self, page: Page) -> None:
        """Route ``page``'s state polls through :meth:`handle`."""
        await page.route(UPLOAD_STATE_URL, self.handle)

    async def handle(self, route: Route) -> None:
        """Pass the poll on to the server and record a final answer."""
        if route.request.method != "GET":
            await route.continue_()
            return
        response, state = await polled_state(route, settle=self.settle)
        if state is not None and state["status"] == "done":
            self.ends.append("done")
            self.images.append(state["image"])
        elif state is not None and state["status"] == "failed":
            self.ends.append(state["error"]["code"])
        if state is not None and state["status"] != "processing" and self.lose > 0:
            self.lose -= 1
            await route.abort("connectionreset")
            return
        await route.fulfill(response=response)


async def polled_state(route: Route, *, settle: bool) -> tuple[APIResponse, dict[str, Any] | None]:
    """The server's answer to a routed state poll and its JSON (None unless 2xx); with
    ``settle``, asked again every 0.1 s while the upload is ``processing``."""
    response = await route.fetch()
    state = json.loads(await response.text()) if response.ok else None

    async def settled() -> bool:
        nonlocal response, state
        if state is None or state["status"] != "processing":
            return True
        response = await route.fetch()
        state = json.loads(await response.text()) if response.ok else None
        return False

    if settle:
        await poll_until(
            settled, deadline=UPLOAD_TIMEOUT_MS / 1000, interval=0.1, what="processing"
        )
    return response, state


@dataclass
class ConsoleLog:
    """Console errors and uncaught exceptions of watched pages.

    ``errors``: everything that counts as a failure. ``network``: "Failed to load resource"
    lines matching one of the ``allowed`` patterns (HTTP refusals or network failures a test
    provokes on purpose), kept apart so the test can check they really happened.
    """

    allowed: list[re.Pattern[str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    network: list[str] = field(default_factory=list)

    def allow(self, *patterns: str) -> None:
        """Accept "Failed to load resource" messages whose text or resource URL contains any
        of ``patterns`` (regex)."""
        self.allowed.extend(re.compile(pattern) for pattern in patterns)

    def watch(self, page: Page, label: str) -> Page:
        def on_console(message: ConsoleMessage) -> None:
            if message.type != "error":
                return
            text = message.text
            # Chromium names the failed resource in the message's location, not its text.
            seen = f"{text} {message.location.get('url', '')}"
            if NETWORK_MESSAGE.match(text) and any(p.search(seen) for p in self.allowed):
                self.network.append(f"[{label}] {text}")
                return
            self.errors.append(f"[{label}] console: {text} ({message.location})")

        def on_page_error(error: Exception) -> None:
            self.errors.append(f"[{label}] uncaught: {error}")

        page.on("console", on_console)
        page.on("pageerror", on_page_error)
        return page

    def assert_clean(self) -> None:
        assert self.errors == [], "console errors:\n" + "\n".join(self.errors)


async def phone_context(
    browser: Browser, viewport: ViewportSize = PHONE_390, **options: Any
) -> BrowserContext:
    """A fresh phone: its own cookies and storage, touch, mobile viewport."""
    context = await browser.new_context(
        viewport=viewport,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        **options,
    )
    context.set_default_timeout(15_000)
    return context


async def create_room(http: httpx.AsyncClient, title: str, **settings: Any) -> dict[str, Any]:
    """Create a room over the API with any settings; returns the host's view with host_key."""
    response = await http.post("/api/rooms", json={"title": title, **settings})
    assert response.status_code == 201, response.text
    room: dict[str, Any] = response.json()
    return room


def host_headers(room: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {room['host_key']}"}


async def room_images(http: httpx.AsyncClient, room: dict[str, Any]) -> list[dict[str, Any]]:
    """Every approved image of the room, as the host sees it."""
    response = await http.get(
        f"/api/rooms/{room['token']}/images", params={"limit": 200}, headers=host_headers(room)
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def patch_room(http: httpx.AsyncClient, room: dict[str, Any], **changes: Any) -> None:
    response = await http.patch(
        f"/api/rooms/{room['token']}", json=changes, headers=host_headers(room)
    )
    assert response.status_code == 200, response.text


async def open_room(page: Page, room: dict[str, Any]) -> None:
    """Open the participant page (the QR code's URL) and wait for its script to settle."""
    await page.goto(room["join_url"])
    await expect(page.get_by_test_id("room-title")).to_have_text(room["title"])


async def join(page: Page, name: str, passcode: str | None = None) -> None:
    """Join from the page's form; returns once the upload card greets the guest."""
    await page.get_by_test_id("name-input").fill(name)
    if passcode is not None:
        await page.get_by_test_id("passcode-input").fill(passcode)
    await page.get_by_role("button", name="Join", exact=True).click()
    await expect(page.get_by_test_id("identity")).to_have_text(f"Uploading as {name}")


async def pick_photos(page: Page, photos: Iterable[Path]) -> None:
    await page.get_by_test_id("file-input").set_input_files(list(photos))


def upload_rows(page: Page) -> Any:
    return page.get_by_test_id("my-uploads").get_by_test_id("upload-item")


def image_card(page: Page, image_id: int) -> Any:
    return page.locator(f'#gallery [data-testid="image"][data-image-id="{image_id}"]')


async def screenshot(page: Page, state: str, *, full_page: bool = True) -> None:
    """Save the page as ``test-artifacts/screenshots/guest-<state>.png`` (the whole page, or
    what the screen shows with ``full_page=False``, e.g. for a full-screen dialog), if
    :data:`SAVE_SCREENSHOTS`."""
    if not SAVE_SCREENSHOTS:
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if full_page:
        # From the top, so the sticky top bar is drawn where it belongs.
        await page.evaluate("() => window.scrollTo(0, 0)")
    await page.screenshot(path=SCREENSHOTS / f"guest-{state}.png", full_page=full_page)


async def assert_no_horizontal_overflow(page: Page) -> None:
    """Nothing on the page is wider than the phone's screen."""
    widths = await page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
    )
    assert widths["scroll"] <= widths["inner"], f"horizontal overflow: {widths}"
