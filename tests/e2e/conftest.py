"""Fixtures of the browser tests: one headless Debian Chromium per test session (per xdist
worker), driven by Playwright, with a fresh browser context per test.

Playwright's objects belong to the event loop that started it, so every test here and the
async fixtures it uses run in the session's event loop (``loop_scope="session"``); each test
still gets its own server (``live_server``) and its own contexts, closed when it ends.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Playwright, async_playwright

from tests.conftest import LiveServer, SettingsFactory, run_server

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

E2E = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the async tests of this folder in the session's event loop, where the shared
    Chromium lives (this hook sees every collected item, so it picks this folder's)."""
    for item in items:
        function = getattr(item, "obj", None)
        if item.path.is_relative_to(E2E) and inspect.iscoroutinefunction(function):
            # Before the marker auto mode gave the test: the closest marker decides.
            item.add_marker(pytest.mark.asyncio(loop_scope="session"), append=False)


class SharedChromium:
    """The session's Chromium, launched on first use and again if it went away (a crash
    in one test does not fail every later one)."""

    def __init__(self, playwright: Playwright) -> None:
        self.playwright = playwright
        self.browser: Browser | None = None

    async def get(self) -> Browser:
        """The running browser, launched now if there is none or it disconnected."""
        if self.browser is None or not self.browser.is_connected():
            self.browser = await self.playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
        return self.browser


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def shared_chromium() -> AsyncIterator[SharedChromium]:
    """One Playwright driver and Chromium for the whole session; closed at its end."""
    async with async_playwright() as playwright:
        shared = SharedChromium(playwright)
        try:
            yield shared
        finally:
            if shared.browser is not None and shared.browser.is_connected():
                await shared.browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser(shared_chromium: SharedChromium) -> AsyncIterator[Browser]:
    """The session's Chromium for one test: the test makes its own contexts (fresh profiles:
    cookies, storage, cache), and any it left open are closed when it ends."""
    chromium = await shared_chromium.get()
    assert not chromium.contexts, "a previous test's browser context is still open"
    try:
        yield chromium
    finally:
        for context in list(chromium.contexts):
            await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def live_server(make_settings: SettingsFactory) -> AsyncIterator[LiveServer]:
    """``tests/conftest.py``'s ``live_server``, run in the session's event loop with the tests."""
    async for server in run_server(make_settings()):
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def slow_heartbeat_server(make_settings: SettingsFactory) -> AsyncIterator[LiveServer]:
    """A live server whose Socket.IO heartbeat (60 s + 60 s) outlasts the fake time a test
    runs a page's paused clock through (:func:`tests.e2e.host_wall_session.run_clock_until`),
    so the page's client never takes the racing clock for a dead connection."""
    async for server in run_server(
        make_settings(ping_interval_seconds=60, ping_timeout_seconds=60)
    ):
        yield server
