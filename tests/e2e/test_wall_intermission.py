"""The wall's periodic full-screen "scan to join" intermission: read back from screenshots at
1080p and 4K it decodes to the room's QR payload with whole device pixels per module (at least
28 on 1080p, twice that on 4K), the typeable address and grouped code sit beside it with the
passcode line; it waits for queued photos, holds photos that arrive meanwhile (each gets its
full time afterwards), ends after its duration, never shows on a blanked wall, and the host
page's control sets it live on an open wall, whose scan distance the host page states.

The query overrides ``?intermission_every=`` and ``?intermission_seconds=`` (seconds) shorten
the room's period and duration; ``?min_seconds=`` the photos' turns. The test of the queue keeps
the room's own 5 s turns and 20 s intermission and runs the wall on Playwright's fake clock,
paused while photos arrive and then run through the display timers.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlsplit

import zxingcpp
from PIL import Image
from playwright.async_api import Browser, Page, expect

from tests.conftest import LiveServer
from tests.e2e.guest_session import patch_room
from tests.e2e.host_wall_session import (
    FULL_HD,
    LIVE_TIMEOUT_MS,
    ConsoleLog,
    api_client,
    create_room,
    host_headers,
    host_view,
    join,
    new_context,
    open_host,
    open_wall,
    pause_clock,
    run_clock_until,
    screenshot,
    set_host_key,
    upload_ok,
)
from web.rooms.table_card import grouped_code

OVERLAY = '[data-testid="wall-intermission"]'
QR = '[data-testid="intermission-qr"]'
# A page function: whether the intermission's schedule is in the given state.
STATE_IS = "(state) => document.getElementById('wall-intermission').dataset.state === state"
# Five different photos (the server de-duplicates by content): a name and a width each.
PHOTOS = (("coffee", 640), ("chelsea", 640), ("astronaut", 640), ("rocket", 640), ("coffee", 600))


async def intermission_laid_out(page: Page, modules: int) -> int:
    """Wait until the intermission is up with its QR image loaded and laid out at a whole
    number of device pixels per module (``data-qr-module-px``); returns that number."""
    await page.wait_for_function(
        """(modules) => {
          const overlay = document.querySelector('[data-testid="wall-intermission"]');
          const img = document.querySelector('[data-testid="intermission-qr"]');
          const perModule = Number(overlay.dataset.qrModulePx);
          const width = img.getBoundingClientRect().width * window.devicePixelRatio;
          return !overlay.hidden && img.complete && img.naturalWidth > 0 && perModule >= 1
            && Math.abs(width - perModule * modules) < 0.01;
        }""",
        arg=modules,
        timeout=LIVE_TIMEOUT_MS,
    )
    return int(await page.locator(OVERLAY).get_attribute("data-qr-module-px") or 0)


async def decode_screen(page: Page, name: str) -> list[str]:
    """Screenshot the whole screen (saved as ``name``) and decode every QR code in it."""
    await screenshot(page, name)
    png = await page.screenshot(animations="disabled")
    with Image.open(io.BytesIO(png)) as image:
        found = zxingcpp.read_barcodes(image.convert("L"))
    return [code.text for code in found if code.format == zxingcpp.BarcodeFormat.QRCode]


async def record_timeline(page: Page) -> None:
    """Log, with ``performance.now()`` times (ms), every photo the spotlight shows and every
    state of the intermission from now on (``window.__timeline``: ``[kind, value, ms]``)."""
    await page.evaluate(
        """() => {
          window.__timeline = [];
          const spot = document.getElementById('spotlight');
          const overlay = document.getElementById('wall-intermission');
          const note = (kind, value) => window.__timeline.push([kind, value, performance.now()]);
          note('photo', spot.dataset.imageId || null);
          note('intermission', overlay.dataset.state);
          new MutationObserver(() => note('photo', spot.dataset.imageId || null))
            .observe(spot, { attributes: true, attributeFilter: ['data-image-id'] });
          new MutationObserver(() => note('intermission', overlay.dataset.state))
            .observe(overlay, { attributes: true, attributeFilter: ['data-state'] });
        }"""
    )


async def timeline(page: Page) -> list[tuple[str, str | None, float]]:
    entries: list[list[Any]] = await page.evaluate("() => window.__timeline")
    return [(kind, value, float(ms)) for kind, value, ms in entries]


def first_time(entries: list[tuple[str, str | None, float]], kind: str, value: str) -> float:
    """When ``kind`` first became ``value`` (ms)."""
    return next(ms for k, v, ms in entries if k == kind and v == value)


async def test_intermission_qr_decodes_full_screen_at_1080p_and_4k_with_the_code_beside_it(
    live_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    measured: dict[str, int] = {}
    async with api_client(live_server.base_url) as http:
        room = await create_room(
            http,
            "Rooftop party",
            passcode="4821",
            wall_show_passcode=True,
            wall_intermission_minutes=5,
        )
        modules = int(room["qr_modules"])
        assert room["wall_intermission_minutes"] == 5 and room["code"]
        encoded = room["join_url"].upper()  # qr_payload of the short join URL
        for label, scale in (("1080p", 1), ("4k", 2)):
            context = await new_context(
                browser, viewport=FULL_HD, device_scale_factor=scale, reduced_motion="reduce"
            )
            await set_host_key(context, room)
            wall = await open_wall(
                console.watch(await context.new_page(), f"wall-{label}"),
                room,
                "?intermission_every=1&intermission_seconds=60",
            )
            overlay = wall.get_by_test_id("wall-intermission")
            await expect(overlay).to_be_visible(timeout=LIVE_TIMEOUT_MS)
            await expect(overlay).to_have_attribute("data-state", "showing")
            measured[label] = await intermission_laid_out(wall, modules)
            # No fade for a wall that asks for reduced motion.
            assert await overlay.evaluate("(el) => getComputedStyle(el).animationName") == "none"
            assert await decode_screen(wall, f"wall-intermission-{label}") == [encoded]

            await expect(overlay.get_by_role("heading", name="Scan to join")).to_be_visible()
            await expect(overlay.locator("#intermission-title")).to_have_text(room["title"])
            code = overlay.get_by_test_id("intermission-code")
            await expect(code).to_have_text(grouped_code(room["code"]))
            assert (await code.inner_text()).replace(" ", "") == room["code"]
            assert "monospace" in await code.evaluate("(el) => getComputedStyle(el).fontFamily")
            address = urlsplit(room["join_url"]).netloc
            await expect(overlay.locator(".intermission-type")).to_have_text(
                f"or open {address} and type the code"
            )
            await expect(overlay.get_by_test_id("wall-passcode")).to_have_text("Passcode 4821")
            # Everything on screen, the code beside the QR code, not over it.
            qr_box = await overlay.locator(QR).bounding_box()
            code_box = await code.bounding_box()
            assert qr_box is not None and code_box is not None
            assert qr_box["y"] >= 0 and qr_box["y"] + qr_box["height"] <= FULL_HD["height"]
            assert qr_box["x"] + qr_box["width"] <= code_box["x"]
            assert code_box["x"] + code_box["width"] <= FULL_HD["width"]
            await context.close()
    print("intermission px per module:", measured)
    assert measured["1080p"] >= 28, measured
    assert measured["4k"] == 2 * measured["1080p"], measured
    console.assert_clean()


async def test_intermission_waits_for_queued_photos_holds_new_ones_and_ends(
    slow_heartbeat_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    # The room's own turns and intermission; one falls due 1 s after it is turned on, while
    # three photos (15 s) still wait.
    min_ms = 5000
    intermission_ms = 20_000
    async with api_client(slow_heartbeat_server.base_url) as http:
        room = await create_room(http, "Queue first")
        guest = await join(http, room, "Noor")
        context = await new_context(browser, viewport=FULL_HD, reduced_motion="reduce")
        wall = await open_wall(
            console.watch(await context.new_page(), "wall"),
            room,
            "?intermission_every=1&cycle=600",
            fake_clock=True,
        )
        spotlight = wall.get_by_test_id("wall-spotlight")
        overlay = wall.get_by_test_id("wall-intermission")
        await expect(overlay).to_have_attribute("data-state", "off")
        await expect(spotlight).to_have_attribute("data-min-seconds", str(min_ms // 1000))
        await record_timeline(wall)
        await pause_clock(wall)

        # Photos queue for the spotlight; the intermission turned on falls due meanwhile.
        queued = [await upload_ok(http, room, guest, name=n, width=w) for n, w in PHOTOS[:3]]
        await expect(spotlight).to_have_attribute(
            "data-image-id", str(queued[0]["id"]), timeout=LIVE_TIMEOUT_MS
        )
        await expect(spotlight).to_have_attribute("data-queue", "2", timeout=LIVE_TIMEOUT_MS)
        await patch_room(http, room, wall_intermission_minutes=5)
        await expect(overlay).to_have_attribute("data-state", "waiting", timeout=LIVE_TIMEOUT_MS)
        await run_clock_until(wall, STATE_IS, "due")
        await expect(overlay).to_be_hidden()
        await run_clock_until(wall, STATE_IS, "showing", step_ms=250)

        # Arriving now, photos wait for the wall to come back.
        held = [await upload_ok(http, room, guest, name=n, width=w) for n, w in PHOTOS[3:]]
        await expect(spotlight).to_have_attribute("data-queue", "2", timeout=LIVE_TIMEOUT_MS)
        await expect(overlay).to_be_visible()
        await screenshot(wall, "wall-intermission-queue")
        await run_clock_until(
            wall,
            "([last]) => { const f = document.getElementById('spotlight');"
            " return f.dataset.imageId === String(last) && f.dataset.queue === '0'; }",
            [held[1]["id"]],
            step_ms=250,
        )
        await expect(overlay).to_be_hidden()
        await expect(wall.locator("#wall")).to_be_visible()

        entries = await timeline(wall)
        shown_at = first_time(entries, "intermission", "showing")
        hidden_at = next(
            ms
            for kind, value, ms in entries
            if kind == "intermission" and ms > shown_at and value != "showing"
        )
        last_queued = first_time(entries, "photo", str(queued[-1]["id"]))
        # Photos first: the last queued photo had its whole turn before the intermission.
        assert shown_at >= last_queued + min_ms - 50, entries
        for image in queued:
            assert first_time(entries, "photo", str(image["id"])) < shown_at, entries
        # Nothing moved under it, then each held photo had its full turn after it.
        assert not [e for e in entries if e[0] == "photo" and shown_at < e[2] < hidden_at]
        first_held = first_time(entries, "photo", str(held[0]["id"]))
        assert hidden_at <= first_held, entries
        assert first_time(entries, "photo", str(held[1]["id"])) >= first_held + min_ms - 50
        assert hidden_at - shown_at >= intermission_ms - 50, entries
        await context.close()
    console.assert_clean()


async def test_a_blanked_wall_or_a_closed_room_shows_no_intermission(
    live_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Speeches", wall_blanked=True, wall_intermission_minutes=10)
        # Motion allowed here: the intermission fades in.
        context = await new_context(browser, viewport=FULL_HD, reduced_motion="no-preference")
        wall = await open_wall(
            console.watch(await context.new_page(), "wall"),
            room,
            "?intermission_every=1&intermission_seconds=60",
        )
        overlay = wall.get_by_test_id("wall-intermission")
        await record_timeline(wall)
        # It fell due, and stays back while the wall is blanked.
        await expect(overlay).to_have_attribute("data-state", "due", timeout=LIVE_TIMEOUT_MS)
        await expect(overlay).to_be_hidden()
        await expect(wall.get_by_test_id("wall-blank")).to_be_visible()
        # Back from blank: the one held back shows; blanked again: it goes at once.
        await patch_room(http, room, wall_blanked=False)
        await expect(overlay).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        assert await overlay.evaluate("(el) => getComputedStyle(el).animationName") == (
            "intermission-in"
        )
        await patch_room(http, room, wall_blanked=True)
        await expect(overlay).to_be_hidden(timeout=LIVE_TIMEOUT_MS)
        await expect(overlay).not_to_have_attribute("data-state", "showing")
        entries = await timeline(wall)
        showing = [e for e in entries if e[0] == "intermission" and e[1] == "showing"]
        assert len(showing) == 1, entries
        # Closed: back from blank, the next one falls due and never shows.
        await patch_room(http, room, wall_blanked=False)
        closed = await http.post(f"/api/rooms/{room['token']}/close", headers=host_headers(room))
        assert closed.status_code == 200, closed.text
        await expect(wall.get_by_test_id("wall-closed")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        await record_timeline(wall)
        await expect(overlay).to_have_attribute("data-state", "due", timeout=LIVE_TIMEOUT_MS)
        await expect(overlay).to_be_hidden()
        entries = await timeline(wall)
        assert not [e for e in entries if e[0] == "intermission" and e[1] == "showing"], entries
        await context.close()
    console.assert_clean()


async def test_host_control_sets_the_intermission_live_and_states_its_scan_distance(
    live_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Garden")
        modules = int(room["qr_modules"])
        host_context = await new_context(browser, viewport=FULL_HD)
        await set_host_key(host_context, room)
        host = await open_host(console.watch(await host_context.new_page(), "host"), room)
        wall_context = await new_context(browser, viewport=FULL_HD, reduced_motion="reduce")
        wall = await open_wall(
            console.watch(await wall_context.new_page(), "wall"),
            room,
            "?intermission_every=1&intermission_seconds=60",
        )
        overlay = wall.get_by_test_id("wall-intermission")
        await expect(overlay).to_have_attribute("data-state", "off")
        choice = host.get_by_test_id("wall-intermission-minutes")
        await expect(choice.get_by_role("radio", name="Off")).to_be_checked()

        await choice.get_by_text("10", exact=True).click()
        await expect(overlay).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        assert (await host_view(http, room))["wall_intermission_minutes"] == 10
        px = await intermission_laid_out(wall, modules)

        seconds = host.get_by_test_id("intermission-seconds")
        await seconds.fill("3")
        await host.locator("#intermission-save").click()
        await expect(host.locator("#error-wall_intermission_seconds")).to_have_text(
            "Enter a whole number of seconds from 5 to 120."
        )
        assert (await host_view(http, room))["wall_intermission_seconds"] == 20
        await seconds.fill("45")
        await host.locator("#intermission-save").click()
        await expect(host.locator("#error-wall_intermission_seconds")).to_be_hidden()
        await expect(seconds).to_have_value("45")
        await expect(
            host.get_by_text("The full-screen QR code now stays up for 45 seconds.")
        ).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        assert (await host_view(http, room))["wall_intermission_seconds"] == 45
        await screenshot(host, "host-wall-intermission", full_page=True)

        await choice.get_by_text("Off", exact=True).click()
        await expect(overlay).to_be_hidden(timeout=LIVE_TIMEOUT_MS)
        await expect(overlay).to_have_attribute("data-state", "off")
        assert (await host_view(http, room))["wall_intermission_minutes"] == 0

        # The host page's scan distance is the one of what the wall drew: ten times the
        # symbol's width (no quiet zone) on a 1920 px wide, 3 m or 1.43 m wide screen.
        width = px * (modules - 8) / 1920
        line = host.get_by_test_id("qr-distances").locator('[data-size="intermission"]')
        await expect(line).to_have_text(
            f"Intermission (full screen): scans from about {width * 30:.1f} m on a 3 m wide "
            f"projection, {width * 14.3:.1f} m on a 65″ TV (1080p or 4K)"
        )
        print(f"intermission scan distance: {width * 30:.2f} m (3 m), {width * 14.3:.2f} m (TV)")
        assert width * 30 >= 10, "the full-screen code must scan from 10 m on a 3 m projection"
        await host_context.close()
        await wall_context.close()
    console.assert_clean()
