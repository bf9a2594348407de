"""The printable table cards, read back from the PDF Chromium prints: one A4 page of four
cards, each with a QR code that decodes to the room's join URL at 2 mm or more a module, the
typeable address and the grouped code, even with a 200-character title; a passcode room's card
says to ask the host; the host page links to it; an address phones cannot open is flagged on
screen and on paper; an ended room's card is 410 and an unknown one 404."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pypdfium2
import zxingcpp
from playwright.async_api import Browser, Page, expect

from tests.conftest import LiveServer, SettingsFactory, run_server
from tests.e2e.host_wall_session import (
    LAPTOP,
    SAVE_SCREENSHOTS,
    SCREENSHOTS,
    ConsoleLog,
    api_client,
    create_room,
    new_context,
    screenshot,
    serious_axe_violations,
    set_host_key,
)
from web.rooms.qr import QUIET_ZONE_MODULES, qr_payload
from web.rooms.table_card import QR_WIDTH_MM, grouped_code, typed_address

# A PDF point is 1/72 inch; ISO 216 A4 is 210 x 297 mm.
POINTS_PER_MM = 72 / 25.4
A4_POINTS = (210 * POINTS_PER_MM, 297 * POINTS_PER_MM)
RENDER_DPI = 300
# A public base URL on the venue's network, as a host sets IMAGESHARK_PUBLIC_BASE_URL.
VENUE_BASE_URL = "http://192.168.1.20:8000"


@dataclass
class PrintedCode:
    """One QR code found on the rendered sheet."""

    text: str
    module_mm: float
    """Printed size of one module: the symbol's dark extent over its module count."""
    width_mm: float
    """Printed width with the quiet zone."""


@dataclass
class PrintedSheet:
    """What Chromium printed: page sizes in points, the text, and the QR codes on page 1."""

    page_sizes: list[tuple[float, float]]
    text: str
    codes: list[PrintedCode]


def read_pdf(pdf: bytes, modules: int, name: str) -> PrintedSheet:
    """Render page 1 of ``pdf`` at :data:`RENDER_DPI` (saved as ``name``), decode every QR code
    (``modules`` wide with the quiet zone) and measure its module size (blocking)."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        sizes = [document[index].get_size() for index in range(len(document))]
        page = document[0]
        text = page.get_textpage().get_text_range()
        image = page.render(scale=RENDER_DPI / 72).to_pil().convert("L")
    finally:
        document.close()
    if SAVE_SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        image.save(SCREENSHOTS / f"{name}.png")
    mm_per_px = 25.4 / RENDER_DPI
    symbol_modules = modules - 2 * QUIET_ZONE_MODULES
    codes = []
    for found in zxingcpp.read_barcodes(image):
        if found.format != zxingcpp.BarcodeFormat.QRCode:
            continue
        corners = [found.position.top_left, found.position.top_right]
        corners += [found.position.bottom_left, found.position.bottom_right]
        # The symbol's dark extent, searched around where the decoder found it: half a module
        # is a margin well inside the four-module quiet zone.
        left, right = min(p.x for p in corners), max(p.x for p in corners)
        top, bottom = min(p.y for p in corners), max(p.y for p in corners)
        margin = (right - left) // symbol_modules
        box = (left - margin, top - margin, right + margin + 1, bottom + margin + 1)
        dark = image.crop(box).point(lambda value: 255 if value < 128 else 0).getbbox()
        assert dark is not None
        px_per_module = (dark[2] - dark[0]) / symbol_modules
        codes.append(
            PrintedCode(
                text=found.text,
                module_mm=px_per_module * mm_per_px,
                width_mm=px_per_module * modules * mm_per_px,
            )
        )
    return PrintedSheet(page_sizes=sizes, text=text, codes=codes)


async def print_cards(page: Page, room: dict[str, Any], name: str) -> PrintedSheet:
    """Print the open card page of ``room`` to PDF as a browser prints it (A4, backgrounds,
    the page's own @page size) and read it back (see :func:`read_pdf`)."""
    await page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="card-qr"]')]
                   .every((img) => img.complete && img.naturalWidth > 0)"""
    )
    pdf = await page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    return await asyncio.to_thread(read_pdf, pdf, int(room["qr_modules"]), name)


async def cards_overflow(page: Page) -> list[str]:
    """Laid out for print, every element of a card that sticks out of its card or is cut
    sideways; [] when everything fits."""
    await page.emulate_media(media="print")
    try:
        found: list[str] = await page.evaluate(
            """() => {
              const out = [];
              for (const card of document.querySelectorAll('[data-testid="table-card"]')) {
                const box = card.getBoundingClientRect();
                for (const el of card.children) {
                  const r = el.getBoundingClientRect();
                  if (r.left < box.left - 0.5 || r.right > box.right + 0.5
                      || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5
                      || el.scrollWidth > el.clientWidth + 1) {
                    out.push(`${el.className}: ${JSON.stringify(r)} in ${JSON.stringify(box)}`);
                  }
                }
              }
              return out;
            }"""
        )
    finally:
        await page.emulate_media(media="null")
    return found


def card_url(base_url: str, room: dict[str, Any]) -> str:
    """The room's card page on the test server (the view's URLs may name a public host)."""
    return f"{base_url}/r/{room['token']}/card"


async def test_one_a4_page_of_four_cards_that_scan(
    make_settings: SettingsFactory, browser: Browser
) -> None:
    console = ConsoleLog()
    async for server in run_server(make_settings(public_base_url=VENUE_BASE_URL)):
        async with api_client(server.base_url) as http:
            room = await create_room(http, "Anna & Ben's wedding")
        assert room["join_url_warning"] is None
        payload = qr_payload(room["join_url"])
        context = await new_context(browser, viewport=LAPTOP)
        # Stands in for the print dialog, which a headless browser does not open.
        await context.add_init_script("window.print = () => { window.printed = true; };")
        page = console.watch(await context.new_page(), "card")
        answer = await page.goto(card_url(server.base_url, room))
        assert answer is not None and answer.status == 200
        await expect(page.get_by_test_id("table-card")).to_have_count(4)
        await expect(page.get_by_test_id("print-note")).to_contain_text("100%")
        await expect(page.get_by_test_id("print-note")).to_contain_text(f"{QR_WIDTH_MM} mm")
        await expect(page.get_by_test_id("join-url-warning")).to_have_count(0)
        await screenshot(page, "card-screen", full_page=True)
        await page.get_by_test_id("print-cards").click()
        await page.wait_for_function("() => window.printed === true")
        assert await cards_overflow(page) == []

        sheet = await print_cards(page, room, "card-print")
        assert len(sheet.page_sizes) == 1, sheet.page_sizes
        for measured, a4 in zip(sheet.page_sizes[0], A4_POINTS, strict=True):
            assert abs(measured - a4) <= 1, sheet.page_sizes
        assert [code.text for code in sheet.codes] == [payload] * 4
        text = " ".join(sheet.text.split())
        assert text.count(room["title"]) == 4, text
        assert text.count(grouped_code(room["code"])) == 4, text
        assert text.count(typed_address(room["join_url"])) == 4, text
        assert "Scan to join and share your photos" in text
        assert "passcode" not in text
        expected_mm = float(
            await page.get_by_test_id("card-qr").first.get_attribute("data-module-mm") or 0
        )
        assert expected_mm == QR_WIDTH_MM / room["qr_modules"]
        print("printed mm per module:", [round(code.module_mm, 3) for code in sheet.codes])
        print("printed QR width (mm):", [round(code.width_mm, 2) for code in sheet.codes])
        for code in sheet.codes:
            assert code.module_mm >= 2, sheet.codes
            assert abs(code.module_mm - expected_mm) <= 0.02 * expected_mm, sheet.codes
        await context.close()
    console.assert_clean()


async def test_long_title_and_passcode_still_fit_and_no_serious_axe_violations(
    make_settings: SettingsFactory, browser: Browser
) -> None:
    console = ConsoleLog()
    # Words and then one long word, 200 characters: the most a title may have.
    title = ("Summer party of the neighbourhood association " * 4)[:150]
    title += "Supercalifragilistic" * 3
    title = title[:200]
    assert len(title) == 200
    async for server in run_server(make_settings(public_base_url=VENUE_BASE_URL)):
        async with api_client(server.base_url) as http:
            room = await create_room(http, title, passcode="tulips")
        # CSP bypassed for axe-core's injected script only (the other tests keep it).
        context = await new_context(browser, viewport=LAPTOP, bypass_csp=True)
        page = console.watch(await context.new_page(), "card")
        await page.goto(card_url(server.base_url, room))
        assert await serious_axe_violations(page) == []
        passcode_hint = page.get_by_test_id("card-passcode")
        await expect(passcode_hint).to_have_count(4)
        await expect(passcode_hint.first).to_have_text("This room has a passcode — ask the host")
        assert await cards_overflow(page) == []
        # The title is clamped (it has more lines than are shown), not spilled.
        assert await page.get_by_test_id("card-title").first.evaluate(
            "(el) => el.scrollHeight > el.clientHeight"
        )
        await screenshot(page, "card-screen-long-title", full_page=True)

        sheet = await print_cards(page, room, "card-print-long-title")
        assert len(sheet.page_sizes) == 1, sheet.page_sizes
        assert [code.text for code in sheet.codes] == [qr_payload(room["join_url"])] * 4
        text = " ".join(sheet.text.split())
        assert text.count("This room has a passcode — ask the host") == 4, text
        assert "tulips" not in text
        assert text.count(grouped_code(room["code"])) == 4, text
        await context.close()
    console.assert_clean()


async def test_host_page_links_to_the_cards_and_loopback_is_flagged(
    live_server: LiveServer, browser: Browser
) -> None:
    console = ConsoleLog()
    async with api_client(live_server.base_url) as http:
        room = await create_room(http, "Loopback party")
    # The test server binds 127.0.0.1 only: phones cannot open the join URL.
    assert room["join_url_warning"] is not None
    context = await new_context(browser, viewport=LAPTOP)
    await set_host_key(context, room)
    page = console.watch(await context.new_page(), "host")
    await page.goto(room["host_url"])
    link = page.get_by_test_id("table-card-link")
    await expect(link).to_have_text("Print table cards")
    await link.click()
    await expect(page).to_have_url(card_url(live_server.base_url, room))
    await expect(page.get_by_test_id("table-card")).to_have_count(4)
    warning = page.get_by_test_id("join-url-warning")
    await expect(warning).to_have_text(room["join_url_warning"])
    await expect(warning).to_be_in_viewport()
    # Printing still works, and the sheet says that its cards may not work.
    await expect(page.get_by_test_id("print-cards")).to_be_enabled()
    assert await cards_overflow(page) == []
    sheet = await print_cards(page, room, "card-print-loopback")
    assert len(sheet.page_sizes) == 1
    assert [code.text for code in sheet.codes] == [qr_payload(room["join_url"])] * 4
    assert " ".join(sheet.text.split()).count("Phones may not open this address") == 4
    await context.close()
    console.assert_clean()


async def test_ended_room_card_is_410_and_unknown_is_404(
    make_settings: SettingsFactory, browser: Browser
) -> None:
    console = ConsoleLog()
    console.allow("status of 410", "status of 404")
    async for server in run_server(make_settings(room_ttl_hours=1e-9)):
        async with api_client(server.base_url) as http:
            room = await create_room(http, "Lea's farewell")
        context = await new_context(browser, viewport=LAPTOP)
        page = console.watch(await context.new_page(), "card")
        answer = await page.goto(card_url(server.base_url, room))
        assert answer is not None and answer.status == 410
        await expect(page.get_by_test_id("ended-title")).to_have_text("Lea's farewell")
        await expect(page.get_by_test_id("table-card")).to_have_count(0)
        answer = await page.goto(card_url(server.base_url, {"token": "A" * 24}))
        assert answer is not None and answer.status == 404
        await expect(page.get_by_test_id("table-card")).to_have_count(0)
        await context.close()
    console.assert_clean()
