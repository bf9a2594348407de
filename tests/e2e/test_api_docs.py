"""The API reference page (/docs): Swagger UI from our own origin, under the pages' CSP."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, expect

from tests.conftest import LiveServer
from tests.e2e.guest_session import ConsoleLog


async def test_api_docs_lists_every_operation_without_errors(
    browser: Browser, live_server: LiveServer
) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        document = (await http.get("/openapi.json")).json()
    operations = sum(len(item) for item in document["paths"].values())

    context = await browser.new_context()
    context.set_default_timeout(15_000)
    page = await context.new_page()
    log = ConsoleLog()
    log.watch(page, "docs")
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    foreign: list[str] = []
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith((live_server.base_url, "data:", "blob:"))
            else foreign.append(request.url)
        ),
    )
    response = await page.goto(f"{live_server.base_url}/docs")
    assert response is not None and response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]

    blocks = page.locator(".opblock")
    await expect(blocks).to_have_count(operations)
    await expect(page.locator(".info .title")).to_contain_text("ImageShark API")
    # One operation opened: its responses, error codes included, render.
    await page.locator("#operations-rooms-createRoom .opblock-summary").click()
    await expect(page.locator("#operations-rooms-createRoom .responses-table")).to_contain_text(
        "rate_limited"
    )
    await context.close()
    assert violations == []
    assert foreign == []
    log.assert_clean()
