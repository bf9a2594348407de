"""Pieces shared by the host and wall browser tests (``test_host_*.py``, ``test_wall_*.py``).

Guests are simulated over the HTTP API (httpx, as a phone's page would call it) or with a real
participant page; the host and the wall are real pages in their own Chromium contexts. A host
context is given the room's host key in localStorage before any page script runs, exactly as
the landing page leaves it after creating a room.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, BrowserContext, Page, expect
from playwright.async_api import Error as PlaywrightError

from tests.e2e.guest_session import SAVE_SCREENSHOTS, ConsoleLog, create_room, host_headers
from tests.photos import make_image_bytes

__all__ = ["ConsoleLog", "create_room", "host_headers"]

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
AXE_SCRIPT = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"

# Live updates arrive "within a second"; the margin absorbs a loaded 2-core machine.
LIVE_TIMEOUT_MS = 10_000
FULL_HD = {"width": 1920, "height": 1080}
UHD_4K = {"width": 3840, "height": 2160}
LAPTOP = {"width": 1366, "height": 900}

__all__ = ["ConsoleLog"]


async def pause_clock(page: Page) -> None:
    """Stop the page's fake clock (Playwright's ``page.clock``, installed before the page
    loaded, see :func:`open_wall`) at its current time: from now on its timers fire only when
    :func:`run_clock_until` moves it on.

    The clock's time is fractional (real ``performance.now()`` ticks) and runs on until the
    pause lands, so it pauses 1 ms past the time read; should the page have read the clock
    later still (Playwright then refuses a pause "to the past", having already stopped the
    clock), the time read again is the stopped one and the second pause lands.
    """
    for attempt in range(2):
        now_ms = await page.evaluate("() => Date.now()")
        try:
            # Playwright's Python API takes seconds here (and truncates to whole ms).
            await page.clock.pause_at((math.floor(now_ms) + 1) / 1000)
            return
        except PlaywrightError as error:
            if attempt or "to the past" not in error.message:
                raise


async def run_clock_until(
    page: Page, condition: str, arg: Any = None, *, step_ms: int = 100, limit_ms: int = 100_000
) -> int:
    """Move the page's paused clock on in ``step_ms`` steps until the page function
    ``condition`` (called with ``arg``) returns true: the page's timers (the wall's display
    timers, the host's undo toast) run through in a fraction of their real time, and the
    page's own ``performance.now()`` and ``Date.now()`` measure them in the clock's time.
    Checked before the first step: no time runs if ``condition`` already holds.

    :returns: the clock time run through, ms.
    :raises AssertionError: ``condition`` still false after ``limit_ms`` of clock time.
    """
    ran = 0
    while not await page.evaluate(condition, arg):
        if ran >= limit_ms:
            raise AssertionError(f"{condition} still false after {ran} ms of the page's clock")
        await page.clock.run_for(step_ms)
        ran += step_ms
    return ran


async def new_context(browser: Browser, **options: Any) -> BrowserContext:
    """A fresh browser profile (own cookies and storage); 15 s default timeout."""
    context = await browser.new_context(**options)
    context.set_default_timeout(15_000)
    return context


async def host_view(http: httpx.AsyncClient, room: dict[str, Any]) -> dict[str, Any]:
    """``GET /api/rooms/{token}/host``: the room's settings as stored now."""
    response = await http.get(f"/api/rooms/{room['token']}/host", headers=host_headers(room))
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


async def join(
    http: httpx.AsyncClient, room: dict[str, Any], name: str, passcode: str | None = None
) -> str:
    """Join as a new guest over the API; returns the participant key.

    Each call is a different person: the client's cookies are dropped first, since a join
    from a client that already holds a participant cookie renames that participant instead.
    """
    http.cookies.clear()
    body: dict[str, Any] = {"name": name}
    if passcode is not None:
        body["passcode"] = passcode
    response = await http.post(f"/api/rooms/{room['token']}/participants", json=body)
    assert response.status_code == 201, response.text
    key: str = response.json()["participant_key"]
    return key


@dataclass
class Upload:
    """A guest's upload: the bytes sent and the server's answer."""

    data: bytes
    response: httpx.Response

    @property
    def image(self) -> dict[str, Any]:
        body: dict[str, Any] = self.response.json()
        return body

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


async def upload(
    http: httpx.AsyncClient,
    room: dict[str, Any],
    participant_key: str,
    *,
    name: str = "coffee",
    width: int = 640,
    caption: str | None = None,
    fmt: str = "jpeg",
) -> Upload:
    """Upload one generated photo as the guest holding ``participant_key`` (any status)."""
    data = make_image_bytes(fmt, name=name, size=(width, width * 3 // 4))
    form = {"caption": caption} if caption is not None else {}
    response = await http.post(
        f"/api/rooms/{room['token']}/images",
        files={"file": (f"{name}.{fmt}", data)},
        data=form,
        headers={"X-Participant-Key": participant_key},
    )
    return Upload(data=data, response=response)


async def upload_ok(
    http: httpx.AsyncClient, room: dict[str, Any], participant_key: str, **options: Any
) -> dict[str, Any]:
    """Upload one photo and return the image object; the upload must be accepted (201)."""
    sent = await upload(http, room, participant_key, **options)
    assert sent.response.status_code == 201, sent.response.text
    return sent.image


async def set_host_key(context: BrowserContext, room: dict[str, Any]) -> None:
    """Give every page of ``context`` the host key, as creating the room here would have."""
    await context.add_init_script(
        "localStorage.setItem(" + json.dumps(f"imageshark.host.{room['token']}") + ", "
        f"{json.dumps(room['host_key'])});"
    )


async def open_host(page: Page, room: dict[str, Any]) -> Page:
    """Open the host page of a context holding the host key; returns once controls and the
    live connection are up."""
    await page.goto(room["host_url"])
    await expect(page.get_by_role("switch", name="Blank the wall")).to_be_visible()
    await expect(page.locator("#live")).to_have_attribute("data-state", "live")
    return page


async def open_wall(
    page: Page, room: dict[str, Any], query: str = "", *, fake_clock: bool = False
) -> Page:
    """Open the wall (``query``: e.g. ``"?cycle=1"``); returns once it is live.

    :param fake_clock: install Playwright's fake clock first (it runs on with real time
        until :func:`pause_clock`).
    """
    if fake_clock:
        await page.clock.install()
    await page.goto(room["wall_url"] + query)
    await expect(page.locator("#live")).to_have_attribute("data-state", "live")
    return page


def wall_tiles(page: Page) -> Any:
    """Every photo tile the wall shows (strip in spotlight mode, tiles in grid mode)."""
    return page.locator('#wall [data-testid="image"]')


async def record_wall_images(page: Page) -> None:
    """Remember every image the wall ever shows: ids (``data-image-id``) and picture paths
    (``src``, unique per upload even where the database reuses a deleted row's id)."""
    await page.evaluate(
        """() => {
          window.__wallSeen = new Set();
          window.__wallSrcs = new Set();
          const note = () => {
            for (const el of document.querySelectorAll('#wall [data-image-id]')) {
              window.__wallSeen.add(Number(el.dataset.imageId));
            }
            for (const img of document.querySelectorAll('#wall img')) {
              window.__wallSrcs.add(new URL(img.src, location.href).pathname);
            }
          };
          note();
          new MutationObserver(note).observe(document.getElementById('wall'), {
            subtree: true, childList: true, attributes: true,
            attributeFilter: ['data-image-id', 'src'],
          });
        }"""
    )


async def wall_ever_showed(page: Page) -> set[int]:
    """Ids of every image the wall showed since :func:`record_wall_images`."""
    seen: list[int] = await page.evaluate("() => [...window.__wallSeen]")
    return set(seen)


async def wall_ever_loaded(page: Page) -> set[str]:
    """Paths of every picture the wall showed since :func:`record_wall_images`."""
    srcs: list[str] = await page.evaluate("() => [...window.__wallSrcs]")
    return set(srcs)


async def screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    """Save ``test-artifacts/screenshots/<name>.png`` (``host-…`` or ``wall-…``) if
    :data:`~tests.e2e.guest_session.SAVE_SCREENSHOTS`."""
    if not SAVE_SCREENSHOTS:
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Transitions fast-forwarded: the picture shows the state, not a cross-fade halfway.
    await page.screenshot(
        path=SCREENSHOTS / f"{name}.png", full_page=full_page, animations="disabled"
    )


async def serious_axe_violations(page: Page) -> list[str]:
    """Run axe-core on the page (its context needs ``bypass_csp=True``); returns the serious
    and critical violations, one line each with the offending elements.

    Waits first for the page's finite animations to end (a photo or panel fading in has, for
    a moment, too little contrast with what is behind it; one cancelled meanwhile is not on
    screen), as the guest page's audit does.
    """
    await page.evaluate(
        """() => Promise.all(document.getAnimations()
            .filter(a => a.effect && a.effect.getComputedTiming().iterations !== Infinity)
            .map(a => a.finished.catch(() => null)))"""
    )
    await page.add_script_tag(path=str(AXE_SCRIPT))
    result: dict[str, Any] = await page.evaluate("() => axe.run(document)")
    found = []
    for violation in result["violations"]:
        if violation["impact"] in ("serious", "critical"):
            targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]]
            found.append(
                f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}"
            )
    return found


@asynccontextmanager
async def api_client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        yield http
