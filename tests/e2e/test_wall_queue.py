"""The wall's spotlight shows every photo: new photos queue, each is shown large for at least
the wall's minimum time (the room's ``wall_min_seconds``, 5 s unless the host changes it or
``?min_seconds=`` overrides it), a queue over its cap (``?queue_cap=``) is caught up by a mosaic
of what was waiting and then the newest, and the idle cycle resumes once the queue is empty.

The walls run on Playwright's fake clock: paused while a burst of uploads queues (the live
messages still arrive, no display timer fires), then run through the turns in a fraction of
their real time.

What the spotlight showed is logged in the page by a MutationObserver with ``performance.now()``
timestamps, so durations are measured where they happen, not across the test's connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from playwright.async_api import Browser, Page, expect

from tests.conftest import LiveServer
from tests.e2e.host_wall_session import (
    FULL_HD,
    LAPTOP,
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

MIN_MS = 5000  # the room's default wall_min_seconds
PHOTOS = ("coffee", "rocket", "chelsea", "astronaut")

# Every change of what the spotlight shows: {id (null for the catch-up mosaic), t (ms)}, and
# the longest queue the spotlight ever reported.
RECORD_SPOTLIGHT = """() => {
  const figure = document.getElementById('spotlight');
  window.__spot = [];
  window.__queueMax = 0;
  let last;
  const note = () => {
    const t = performance.now();
    window.__queueMax = Math.max(window.__queueMax, Number(figure.dataset.queue || 0));
    const id = figure.dataset.showing === 'catchup' ? 'catchup' : (figure.dataset.imageId || null);
    if (id !== last) {
      last = id;
      window.__spot.push({ id: id === null || id === 'catchup' ? id : Number(id), t });
    }
  };
  note();
  new MutationObserver(note).observe(figure, {
    attributes: true, attributeFilter: ['data-image-id', 'data-queue', 'data-showing'],
  });
}"""


async def spotlight_log(page: Page) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = await page.evaluate("() => window.__spot")
    return log


async def burst(
    http: httpx.AsyncClient, room: dict[str, Any], guest: str, count: int
) -> list[dict[str, Any]]:
    """``count`` uploads sent at once; returns the images in upload (id) order."""
    images = await asyncio.gather(
        *(
            upload_ok(http, room, guest, name=PHOTOS[index % len(PHOTOS)], width=320 + 8 * index)
            for index in range(count)
        )
    )
    return sorted(images, key=lambda image: int(image["id"]))


async def test_a_burst_of_ten_uploads_shows_each_photo_for_the_minimum_time_in_order(
    slow_heartbeat_server: LiveServer, browser: Browser
) -> None:
    """The room's own minimum (5 s) and idle cycle (10 s), no overrides: ten photos sent at
    once are each shown large for the full minimum, in upload order, then the idle cycle
    resumes. The wall's clock is paused while the burst queues and then run through it."""
    console = ConsoleLog()
    async with api_client(slow_heartbeat_server.base_url) as http:
        room = await create_room(http, "Burst")
        guest = await join(http, room, "Noor")
        first = await upload_ok(http, room, guest, name="coffee", width=300)
        context = await new_context(browser, viewport=FULL_HD)
        wall = await open_wall(
            console.watch(await context.new_page(), "wall"), room, fake_clock=True
        )
        spotlight = wall.get_by_test_id("wall-spotlight")
        await expect(spotlight).to_have_attribute("data-image-id", str(first["id"]))
        await expect(spotlight).to_have_attribute("data-min-seconds", str(MIN_MS // 1000))
        await wall.evaluate(RECORD_SPOTLIGHT)
        await pause_clock(wall)

        images = await burst(http, room, guest, 10)
        ids = [int(image["id"]) for image in images]
        # The first photo's turn runs on the paused clock: the other 9 wait behind it.
        await expect(spotlight).to_have_attribute("data-queue", "9", timeout=LIVE_TIMEOUT_MS)

        # The queue drains, then the idle cycle takes over again: it walks from the newest to
        # the next older photo, so every burst photo has a successor to time it against.
        try:
            await run_clock_until(
                wall,
                """(ids) => {
                  const shown = window.__spot.map((entry) => entry.id);
                  const start = shown.indexOf(ids[0]);
                  return start >= 0 && shown.length > start + ids.length;
                }""",
                ids,
                step_ms=250,
            )
        except AssertionError:
            log = await spotlight_log(wall)
            shown = {entry["id"] for entry in log} & set(ids)
            raise AssertionError(f"{len(shown)} of {len(ids)} shown large: {log}") from None
        await expect(spotlight).to_have_attribute("data-queue", "0")
        log = await spotlight_log(wall)
        start = [entry["id"] for entry in log].index(ids[0])
        shown = log[start : start + len(ids)]
        assert [entry["id"] for entry in shown] == ids, (log, ids)
        for entry, after in zip(shown, log[start + 1 :], strict=False):
            held = after["t"] - entry["t"]
            assert held >= MIN_MS, f"photo {entry['id']} was large for {held:.0f} ms: {log}"
        assert log[start + len(ids)]["id"] == ids[-2], "the idle cycle resumes from the newest"
        assert await wall.evaluate("() => window.__queueMax") <= 10
        assert not console.errors, console.errors
        await context.close()


async def test_a_queue_over_its_cap_is_caught_up_with_a_mosaic_then_the_newest(
    slow_heartbeat_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    cap = 4
    async with api_client(slow_heartbeat_server.base_url) as http:
        room = await create_room(http, "Over the cap")
        guest = await join(http, room, "Noor")
        first = await upload_ok(http, room, guest, name="coffee", width=300)
        context = await new_context(browser, viewport=FULL_HD)
        wall = await open_wall(
            console.watch(await context.new_page(), "wall"),
            room,
            f"?queue_cap={cap}&cycle=60",
            fake_clock=True,
        )
        spotlight = wall.get_by_test_id("wall-spotlight")
        await expect(spotlight).to_have_attribute("data-image-id", str(first["id"]))
        await wall.evaluate(RECORD_SPOTLIGHT)
        await pause_clock(wall)

        images = await burst(http, room, guest, 3 * cap)
        newest = int(images[-1]["id"])
        # Every photo reached the wall before its clock runs on.
        await expect(wall.locator("#wall")).to_have_attribute(
            "data-image-count", str(1 + len(images)), timeout=LIVE_TIMEOUT_MS
        )

        # Over the cap on the live messages alone: no timer needed for the catch-up.
        await expect(spotlight).to_have_attribute("data-showing", "catchup")
        await expect(spotlight.locator(".spot-catchup .catchup-tile").first).to_be_visible()
        # The mosaic faded in (its opacity at rest), for the screenshot: the fade starts on an
        # animation frame (the clock's), the CSS transition then runs in real time.
        await run_clock_until(
            wall, "() => Boolean(document.querySelector('.spot-catchup.is-active'))", step_ms=16
        )
        await expect(wall.locator(".spot-catchup.is-active").last).to_have_css("opacity", "1")
        await screenshot(wall, "wall-spotlight-catchup")
        await run_clock_until(
            wall,
            "([newest]) => { const f = document.getElementById('spotlight');"
            " return f.dataset.imageId === String(newest) && f.dataset.queue === '0'; }",
            [newest],
            step_ms=250,
        )
        log = await spotlight_log(wall)
        shown = [entry["id"] for entry in log]
        assert "catchup" in shown, log
        assert shown[-1] == newest, log
        # Caught up: fewer turns than photos, and never a queue above the cap.
        assert len([id_ for id_ in shown if isinstance(id_, int)]) < len(images) + 1, log
        assert await wall.evaluate("() => window.__queueMax") <= cap
        assert not console.errors, console.errors
        await context.close()


async def test_reduced_motion_wall_still_shows_every_queued_photo(
    slow_heartbeat_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    async with api_client(slow_heartbeat_server.base_url) as http:
        room = await create_room(http, "Calm")
        guest = await join(http, room, "Noor")
        first = await upload_ok(http, room, guest, name="coffee", width=300)
        context = await new_context(browser, viewport=FULL_HD, reduced_motion="reduce")
        wall = await open_wall(
            console.watch(await context.new_page(), "wall"), room, "?cycle=60", fake_clock=True
        )
        spotlight = wall.get_by_test_id("wall-spotlight")
        await expect(spotlight).to_have_attribute("data-image-id", str(first["id"]))
        await wall.evaluate(RECORD_SPOTLIGHT)
        await pause_clock(wall)

        images = await burst(http, room, guest, 4)
        ids = [int(image["id"]) for image in images]
        await expect(spotlight).to_have_attribute("data-queue", "3", timeout=LIVE_TIMEOUT_MS)
        # Until the last photo is shown and its layer made the active one (on an animation
        # frame, the clock's too).
        await run_clock_until(
            wall,
            "([last]) => { const f = document.getElementById('spotlight');"
            " const active = f.querySelectorAll('.spot-layer.is-active');"
            " return f.dataset.imageId === String(last) && f.dataset.queue === '0'"
            " && active.length === 1 && active[0].dataset.imageId === String(last); }",
            [ids[-1]],
            step_ms=250,
        )
        log = await spotlight_log(wall)
        shown = [entry["id"] for entry in log]
        assert shown[shown.index(ids[0]) :] == ids, log
        for entry, after in zip(
            log[shown.index(ids[0]) :], log[shown.index(ids[0]) + 1 :], strict=False
        ):
            assert after["t"] - entry["t"] >= MIN_MS, log
        # No motion: the shown layer is at rest, not scaled.
        active = spotlight.locator(".spot-layer.is-active")
        await expect(active).to_have_count(1)
        assert await active.evaluate("(el) => getComputedStyle(el).transform") == "none"
        assert not console.errors, console.errors
        await context.close()


async def test_the_hosts_seconds_per_photo_reach_the_wall_live(
    slow_heartbeat_server: LiveServer, browser: Browser
) -> None:
    """No override on the wall: the room's ``wall_min_seconds``, set on the host page, paces
    the queue (a wrong value is explained first). Only the wall runs on the fake clock."""
    console = ConsoleLog()
    async with api_client(slow_heartbeat_server.base_url) as http:
        room = await create_room(http, "Paced")
        guest = await join(http, room, "Noor")
        first = await upload_ok(http, room, guest, name="coffee", width=300)
        host_context = await new_context(browser, viewport=LAPTOP)
        await set_host_key(host_context, room)
        host = await open_host(console.watch(await host_context.new_page(), "host"), room)
        wall_context = await new_context(browser, viewport=FULL_HD)
        wall = await open_wall(
            console.watch(await wall_context.new_page(), "wall"), room, "?cycle=60", fake_clock=True
        )
        spotlight = wall.get_by_test_id("wall-spotlight")
        await expect(spotlight).to_have_attribute("data-image-id", str(first["id"]))
        await expect(spotlight).to_have_attribute("data-min-seconds", "5")

        form = host.locator("#settings-form")
        seconds = form.get_by_label("Seconds each new photo stays large on the wall")
        await expect(seconds).to_have_value("5")
        await seconds.fill("1")
        await form.get_by_role("button", name="Save changes").click()
        await expect(seconds).to_have_attribute("aria-invalid", "true")
        await expect(form.locator("#error-wall_min_seconds")).to_contain_text("2 to 60")
        await seconds.fill("2")
        await form.get_by_role("button", name="Save changes").click()
        await expect(host.get_by_role("status").filter(has_text="Settings saved")).to_be_visible()
        assert (await host_view(http, room))["wall_min_seconds"] == 2
        # The wall took the new value live (room_updated), without a reload.
        await expect(spotlight).to_have_attribute("data-min-seconds", "2")

        await wall.evaluate(RECORD_SPOTLIGHT)
        await pause_clock(wall)
        images = await burst(http, room, guest, 3)
        ids = [int(image["id"]) for image in images]
        await expect(spotlight).to_have_attribute("data-queue", "2", timeout=LIVE_TIMEOUT_MS)
        await run_clock_until(
            wall,
            "([last]) => document.getElementById('spotlight').dataset.imageId === String(last)",
            [ids[-1]],
        )
        log = await spotlight_log(wall)
        shown = [entry["id"] for entry in log]
        start = shown.index(ids[0])
        assert shown[start:] == ids, log
        for entry, after in zip(log[start:], log[start + 1 :], strict=False):
            assert after["t"] - entry["t"] >= 2000, log
        assert not console.errors, console.errors
        await host_context.close()
        await wall_context.close()


async def test_a_deleted_photo_leaves_the_queue(
    slow_heartbeat_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    async with api_client(slow_heartbeat_server.base_url) as http:
        room = await create_room(http, "Second thoughts")
        guest = await join(http, room, "Noor")
        first = await upload_ok(http, room, guest, name="coffee", width=300)
        context = await new_context(browser, viewport=FULL_HD)
        wall = await open_wall(
            console.watch(await context.new_page(), "wall"), room, "?cycle=60", fake_clock=True
        )
        spotlight = wall.get_by_test_id("wall-spotlight")
        await expect(spotlight).to_have_attribute("data-image-id", str(first["id"]))
        await expect(spotlight).to_have_attribute("data-min-seconds", "5")
        await wall.evaluate(RECORD_SPOTLIGHT)
        await pause_clock(wall)

        images = await burst(http, room, guest, 4)
        ids = [int(image["id"]) for image in images]
        # The first has the spotlight, three wait (the clock is paused: the third is queued).
        await expect(spotlight).to_have_attribute("data-queue", "3", timeout=LIVE_TIMEOUT_MS)
        gone = ids[2]
        deleted = await http.delete(
            f"/api/rooms/{room['token']}/images/{gone}", headers=host_headers(room)
        )
        assert deleted.status_code in (200, 204), deleted.text
        # The removal reached the wall before its clock runs on.
        await expect(spotlight).to_have_attribute("data-queue", "2", timeout=LIVE_TIMEOUT_MS)
        await run_clock_until(
            wall,
            "([last]) => { const f = document.getElementById('spotlight');"
            " return f.dataset.imageId === String(last) && f.dataset.queue === '0'; }",
            [ids[-1]],
            step_ms=250,
        )
        shown = [entry["id"] for entry in await spotlight_log(wall)]
        assert gone not in shown, shown
        assert shown[shown.index(ids[0]) :] == [ids[0], ids[1], ids[3]], shown
        assert not console.errors, console.errors
        await context.close()


async def test_a_burst_longer_than_ten_is_shown_faster_but_every_photo_in_turn(
    slow_heartbeat_server: LiveServer, browser: Browser
) -> None:
    """Over 10 waiting, the minimum (3 s here) is shared out down to the 1.5 s floor: every
    photo still gets a turn, in upload order, of at least the floor. The wall's clock is
    paused while the burst queues and then run through its turns."""
    console = ConsoleLog()
    async with api_client(slow_heartbeat_server.base_url) as http:
        room = await create_room(http, "Rush")
        guest = await join(http, room, "Noor")
        first = await upload_ok(http, room, guest, name="coffee", width=300)
        context = await new_context(browser, viewport=FULL_HD)
        wall = await open_wall(
            console.watch(await context.new_page(), "wall"),
            room,
            "?min_seconds=3&cycle=60",
            fake_clock=True,
        )
        spotlight = wall.get_by_test_id("wall-spotlight")
        await expect(spotlight).to_have_attribute("data-image-id", str(first["id"]))
        await wall.evaluate(RECORD_SPOTLIGHT)
        await pause_clock(wall)
        images = await burst(http, room, guest, 15)
        ids = [int(image["id"]) for image in images]
        # The first photo's turn runs on the paused clock: the other 14 wait behind it.
        await expect(spotlight).to_have_attribute("data-queue", "14", timeout=LIVE_TIMEOUT_MS)
        await run_clock_until(
            wall,
            "([last]) => { const f = document.getElementById('spotlight');"
            " return f.dataset.imageId === String(last) && f.dataset.queue === '0'; }",
            [ids[-1]],
            step_ms=250,
        )
        log = await spotlight_log(wall)
        shown = [entry["id"] for entry in log]
        start = shown.index(ids[0])
        assert shown[start:] == ids, log
        for entry, after in zip(log[start:], log[start + 1 :], strict=False):
            assert after["t"] - entry["t"] >= 1500, log
        assert await wall.evaluate("() => window.__queueMax") == 14
        assert not console.errors, console.errors
        await context.close()
