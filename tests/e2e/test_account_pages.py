"""The account pages in a browser: signing up and in, the live dashboard of the account's
rooms on two devices, the sessions on the account page and signing out everywhere, the host
page through the session (no host key), claiming a room into the account and creating one
from the landing page signed in; the sign-up page's refusals; axe-core and narrow screens on
every account page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.conftest import LiveServer, SettingsFactory, run_server
from tests.e2e.host_wall_session import (
    LAPTOP,
    LIVE_TIMEOUT_MS,
    ConsoleLog,
    api_client,
    create_room,
    host_view,
    join,
    new_context,
    screenshot,
    serious_axe_violations,
    set_host_key,
    upload_ok,
)
from tests.web.accounts_helpers import repositories

PHONE = {"width": 390, "height": 844}
LAPTOP_800 = {"width": 1280, "height": 800}
NARROWEST = {"width": 360, "height": 740}
EMAIL = "Ana@Example.org"
PASSWORD = "correct horse battery"
SESSION = "imageshark_session"


async def sign_up_in_page(page: Page, base_url: str, name: str = "Ana") -> None:
    """Sign up on ``/signup`` (which signs in too) and land on the dashboard."""
    await page.goto(base_url + "/signup")
    await page.get_by_label("E-mail").fill(EMAIL)
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_test_id("signup-submit").click()
    await expect(page).to_have_url(base_url + "/rooms")


async def sign_in_page(page: Page, base_url: str, next_path: str = "/rooms") -> None:
    """Sign in on ``/signin?next=...`` and land on ``next_path``."""
    await page.goto(f"{base_url}/signin?next={next_path}")
    await page.get_by_label("E-mail").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_test_id("signin-submit").click()
    await expect(page).to_have_url(base_url + next_path)


def room_row(page: Page, title: str) -> Any:
    """The dashboard's row of the room titled ``title``."""
    return page.get_by_test_id("dashboard-room").filter(has_text=title)


async def create_in_dashboard(page: Page, title: str) -> None:
    """Create a room with the dashboard's form; returns once its row is listed."""
    await page.get_by_label("What's the occasion?").fill(title)
    await page.get_by_test_id("create-room").click()
    await expect(room_row(page, title)).to_have_count(1)


async def session_header(context: BrowserContext) -> dict[str, str]:
    """A ``Cookie`` header carrying ``context``'s session cookie, for API calls as it."""
    (value,) = [c.get("value") for c in await context.cookies() if c.get("name") == SESSION]
    return {"Cookie": f"{SESSION}={value}"}


async def room_of(http: httpx.AsyncClient, context: BrowserContext, title: str) -> dict[str, Any]:
    """The ``/api/me/rooms`` entry titled ``title``, read with ``context``'s session cookie."""
    response = await http.get("/api/me/rooms", headers=await session_header(context))
    assert response.status_code == 200, response.text
    (room,) = [room for room in response.json()["rooms"] if room["title"] == title]
    return dict(room)


async def test_dashboard_is_live_on_two_devices_until_signed_out_everywhere(
    live_server: LiveServer, browser: Browser
) -> None:
    base = live_server.base_url
    console = ConsoleLog()
    laptop_context = await new_context(browser, viewport=LAPTOP)
    laptop = console.watch(await laptop_context.new_page(), "laptop")
    await sign_up_in_page(laptop, base)
    await expect(laptop.get_by_test_id("nav-account")).to_have_text("Account: Ana")
    await expect(laptop.get_by_test_id("rooms-empty")).to_be_visible()
    await create_in_dashboard(laptop, "Birthday")
    await create_in_dashboard(laptop, "Picnic")
    await expect(laptop.get_by_test_id("dashboard-room")).to_have_count(2)
    birthday_row = room_row(laptop, "Birthday")
    await expect(birthday_row.get_by_test_id("room-role")).to_have_text("Owner")
    await expect(birthday_row.get_by_test_id("stat-photos")).to_have_text("0")

    # A second device signs in and sees both rooms.
    phone_context = await new_context(browser, viewport=PHONE)
    phone_console = ConsoleLog()
    # After "sign out everywhere" its calls are refused (401): expected.
    phone_console.allow(r"status of 401")
    phone = phone_console.watch(await phone_context.new_page(), "phone")
    await sign_in_page(phone, base)
    await expect(phone.get_by_test_id("dashboard-room")).to_have_count(2)
    await expect(room_row(phone, "Picnic")).to_have_count(1)

    async with api_client(base) as http:
        # A guest shares a photo: the first dashboard counts it without a reload.
        birthday = await room_of(http, laptop_context, "Birthday")
        room = {"token": birthday["token"]}
        await laptop.evaluate("() => { window.notReloaded = true; }")
        guest = await join(http, room, "Kim")
        await upload_ok(http, room, guest)
        await expect(birthday_row.get_by_test_id("stat-photos")).to_have_text(
            "1", timeout=LIVE_TIMEOUT_MS
        )
        await expect(birthday_row.get_by_test_id("stat-guests")).to_have_text("1")
        assert await laptop.evaluate("() => window.notReloaded === true")
        await expect(room_row(phone, "Birthday").get_by_test_id("stat-photos")).to_have_text(
            "1", timeout=LIVE_TIMEOUT_MS
        )
        await screenshot(laptop, "dashboard-laptop", full_page=True)
        await screenshot(phone, "dashboard-phone", full_page=True)

        # The phone has no host key of either room: its host page works through the session.
        await room_row(phone, "Birthday").get_by_test_id("room-host-link").click()
        await expect(phone.get_by_test_id("key-session")).to_be_visible()
        await expect(phone.get_by_test_id("host-key-input")).to_be_hidden()
        await expect(phone.get_by_test_id("close-room")).to_be_visible()
        blank = phone.get_by_role("switch", name="Blank the wall")
        await blank.click()
        await expect(blank).to_have_attribute("aria-checked", "true")
        await expect(phone.get_by_role("status").filter(has_text="wall is blanked")).to_be_visible()
        as_phone = await session_header(phone_context)
        view = (await http.get(f"/api/rooms/{room['token']}/host", headers=as_phone)).json()
        assert view["wall_blanked"] is True and view["role"] == "owner", view
        await phone.goto(base + "/rooms")
        await expect(phone.get_by_test_id("dashboard-room")).to_have_count(2)

        # The account page lists both sessions, this device's marked.
        await laptop.goto(base + "/account")
        sessions = laptop.get_by_test_id("session")
        await expect(sessions).to_have_count(2)
        await expect(laptop.locator('[data-testid="session"][data-current="true"]')).to_have_count(
            1
        )
        await expect(laptop.get_by_test_id("account-email")).to_have_text("Ana@example.org")
        await screenshot(laptop, "account-laptop", full_page=True)

        await laptop.get_by_test_id("sign-out-everywhere").click()
        await laptop.get_by_test_id("confirm-dialog").get_by_test_id("confirm-button").click()
        await expect(laptop).to_have_url(base + "/signin")
        await expect(laptop.get_by_test_id("nav-signin")).to_be_visible()

        # The phone's next call is refused, and its dashboard says it is signed out once the
        # next event makes it ask.
        status = await phone.evaluate("() => fetch('/api/me').then((r) => r.status)")
        assert status == 401
        await upload_ok(http, room, guest, name="rocket")
        await expect(phone.get_by_test_id("signed-out")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    for context in (laptop_context, phone_context):
        await context.close()
    console.assert_clean()
    phone_console.assert_clean()


async def test_host_page_claims_a_room_into_the_account(
    live_server: LiveServer, browser: Browser
) -> None:
    base = live_server.base_url
    console = ConsoleLog()
    async with api_client(base) as http:
        created = await http.post(
            "/api/accounts", json={"email": EMAIL, "password": PASSWORD, "name": "Ana"}
        )
        assert created.status_code == 201, created.text
        # Made before the account existed: no owner, only the host key.
        room = await create_room(http, "Old party")
        assert (await host_view(http, room))["owned"] is False
        context = await new_context(browser, viewport=LAPTOP)
        await set_host_key(context, room)
        page = console.watch(await context.new_page(), "host")
        await sign_in_page(page, base, next_path=f"/r/{room['token']}/host")
        await expect(page.get_by_test_id("nav-account")).to_be_visible()
        await page.get_by_test_id("claim-room").click()
        await expect(page.get_by_test_id("claim-room")).to_be_hidden()
        assert (await host_view(http, room))["owned"] is True
        await page.get_by_test_id("nav-rooms").click()
        await expect(room_row(page, "Old party").get_by_test_id("room-role")).to_have_text("Owner")

        # Signed in, a room made on the landing page goes to the account too.
        await page.goto(base + "/")
        await expect(page.get_by_test_id("create-owned-hint")).to_be_visible()
        await page.get_by_test_id("room-title-input").fill("New party")
        await page.get_by_test_id("create-room").click()
        await expect(page.get_by_test_id("room-title")).to_have_text("New party")
        await page.get_by_test_id("nav-rooms").click()
        await expect(page.get_by_test_id("dashboard-room")).to_have_count(2)
        await expect(room_row(page, "New party").get_by_test_id("room-role")).to_have_text("Owner")
        await context.close()
    console.assert_clean()


async def test_sign_up_shows_the_api_refusals_at_their_fields(
    make_settings: SettingsFactory, browser: Browser
) -> None:
    async for server in run_server(make_settings(sign_up_rate_limit="2/hour")):
        context = await new_context(browser, viewport=PHONE)
        console = ConsoleLog()
        # The refusals below are the API's answers the page shows: expected.
        console.allow(r"status of 401", r"status of 429")
        page = console.watch(await context.new_page(), "signup")
        await page.goto(server.base_url + "/signup")
        password = page.get_by_label("Password")
        # Too short, refused before asking the API; the error is the field's description.
        await page.get_by_label("E-mail").fill("kim@example.org")
        await password.fill("short")
        await page.get_by_test_id("signup-submit").click()
        error = page.locator("#error-password")
        await expect(error).to_contain_text("at least 8 characters")
        await expect(password).to_have_attribute("aria-invalid", "true")
        assert "error-password" in (await password.get_attribute("aria-describedby") or "")

        # Sign-ups are counted per address: the first succeeds...
        await password.fill(PASSWORD)
        await page.get_by_test_id("signup-submit").click()
        await expect(page).to_have_url(server.base_url + "/rooms")
        await page.goto(server.base_url + "/signup")
        # ...the second, an address that has an account, looks like a new one, and signing in
        # with another password fails;
        await page.get_by_label("E-mail").fill("kim@example.org")
        await page.get_by_label("Password").fill("another password")
        await page.get_by_test_id("signup-submit").click()
        await expect(page.get_by_test_id("signup-error")).to_contain_text("sign in instead")
        # the third is throttled, with when to try again.
        await page.get_by_label("E-mail").fill("lou@example.org")
        await page.get_by_test_id("signup-submit").click()
        await expect(page.get_by_test_id("signup-error")).to_contain_text("Try again in")
        await context.close()
        console.assert_clean()

    async for server in run_server(make_settings(signup="closed")):
        context = await new_context(browser, viewport=PHONE)
        console = ConsoleLog()
        console.allow(r"status of 403")
        page = console.watch(await context.new_page(), "closed")
        await page.goto(server.base_url + "/signup")
        await page.get_by_label("E-mail").fill("kim@example.org")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_test_id("signup-submit").click()
        await expect(page.get_by_test_id("signup-error")).to_contain_text(
            "doesn't take new accounts"
        )
        await context.close()
        console.assert_clean()


async def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than its viewport (0: no sideways scrolling)."""
    overflow: int = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return overflow


async def test_account_pages_pass_axe_and_fit_narrow_phones(
    live_server: LiveServer, browser: Browser
) -> None:
    base = live_server.base_url
    console = ConsoleLog()
    context = await new_context(browser, viewport=LAPTOP_800, bypass_csp=True)
    page = console.watch(await context.new_page(), "account")
    for path in ("/signin", "/signup"):
        await page.goto(base + path)
        await expect(page.locator("form.account-form")).to_be_visible()
        assert await serious_axe_violations(page) == [], path
    await sign_up_in_page(page, base, name="Ana with a rather long display name")
    await create_in_dashboard(page, "A wedding with a title long enough to wrap on a phone")
    host_url = (
        base
        + "/r/"
        + (await page.get_by_test_id("dashboard-room").get_attribute("data-token") or "")
        + "/host"
    )
    await page.goto(base + "/account")
    await expect(page.get_by_test_id("session")).to_have_count(1)
    assert await serious_axe_violations(page) == []
    await page.goto(base + "/rooms")
    await expect(page.get_by_test_id("dashboard-room")).to_have_count(1)
    assert await serious_axe_violations(page) == []

    pages = ("/signin", "/signup", "/account", "/rooms", "/")
    for size, label in ((LAPTOP_800, "laptop"), (PHONE, "phone"), (NARROWEST, None)):
        await page.set_viewport_size(size)
        for path in pages:
            await page.goto(base + path)
            await expect(page.get_by_test_id("account-nav")).to_be_visible()
            assert await horizontal_overflow(page) <= 0, (path, size)
            if label is not None and path != "/":
                await screenshot(page, f"account{path.replace('/', '-')}-{label}", full_page=True)
        await page.goto(host_url)
        await expect(page.locator("#key-ok")).to_be_visible()
        assert await horizontal_overflow(page) <= 0, ("host", size)
        if label is not None:
            await screenshot(page, f"account-host-{label}")
    await context.close()
    console.assert_clean()


async def test_a_cohosts_host_page_shows_only_what_its_role_may_do(
    live_server: LiveServer, browser: Browser
) -> None:
    base = live_server.base_url
    console = ConsoleLog()
    async with api_client(base) as http:
        owner_email = "owner@example.org"
        for email in (owner_email, EMAIL):
            created = await http.post("/api/accounts", json={"email": email, "password": PASSWORD})
            assert created.status_code == 201, created.text
        signed_in = await http.post(
            "/api/session", json={"email": owner_email, "password": PASSWORD}
        )
        owner = {"Cookie": f"{SESSION}={signed_in.cookies[SESSION]}"}
        http.cookies.clear()
        made = await http.post(
            "/api/rooms", json={"title": "Gala", "passcode": "tulip"}, headers=owner
        )
        room = made.json()
        # Co-hosts cannot be invited through the API yet: added in the database.
        async with repositories(live_server.settings) as (accounts, rooms):
            account = await accounts.by_email("Ana@example.org")  # stored form of EMAIL
            stored = await rooms.by_token(room["token"])
            assert account is not None and stored is not None
            await rooms.add_host(stored.id, account.id, "cohost", datetime.now(UTC))

        context = await new_context(browser, viewport=LAPTOP)
        page = console.watch(await context.new_page(), "cohost")
        await sign_in_page(page, base)
        await expect(room_row(page, "Gala").get_by_test_id("room-role")).to_have_text("Co-host")
        await room_row(page, "Gala").get_by_test_id("room-host-link").click()
        await expect(page.get_by_test_id("key-session")).to_contain_text("co-host")
        # The session admits the co-host to the passcode room's live feed, and to the wall's
        # settings; the owner's controls are not shown.
        await expect(page.locator("#live")).to_have_attribute("data-state", "live")
        blank = page.get_by_role("switch", name="Blank the wall")
        await blank.click()
        await expect(blank).to_have_attribute("aria-checked", "true")
        # The page says so once the server has stored it.
        await expect(page.get_by_role("status").filter(has_text="wall is blanked")).to_be_visible()
        assert (await host_view(http, room))["wall_blanked"] is True
        for hidden in ("close-room", "download-all", "setting-title", "setting-passcode"):
            await expect(page.get_by_test_id(hidden)).to_be_hidden()
        await expect(page.get_by_test_id("host-key-input")).to_be_hidden()
        await expect(page.get_by_test_id("claim-room")).to_be_hidden()
        await context.close()
    console.assert_clean()
