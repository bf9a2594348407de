"""The account's server-rendered pages: the header's signed-in indicator (landing and host
pages, never the wall or guest pages), the account pages' redirect to sign in, and the
sign-in page's ``next`` kept to this site's paths."""

from __future__ import annotations

import pytest

from tests.conftest import AppClient, SettingsFactory, _app_client
from tests.web.accounts_helpers import signed_up_session
from tests.web.test_host_controls import new_room
from web.pages import safe_next


async def test_the_header_names_the_signed_in_account_on_landing_and_host_pages_only(
    client: AppClient,
) -> None:
    signed_out = await client.http.get("/")
    assert 'href="/signin"' in signed_out.text
    assert signed_out.headers["cache-control"] == "private, no-store"
    me = await signed_up_session(client, "ivy@example.org")
    room = await new_room(client)
    landing = await client.http.get("/", headers=me)
    assert 'data-testid="nav-account"' in landing.text and "ivy@example.org" in landing.text
    # Signed out, the host page's sign-in link comes back to it.
    host = await client.http.get(f"/r/{room['token']}/host")
    assert f'href="/signin?next=/r/{room["token"]}/host"' in host.text
    assert 'data-signed-in="false"' in host.text
    host = await client.http.get(f"/r/{room['token']}/host", headers=me)
    assert 'data-testid="nav-account"' in host.text
    assert 'data-signed-in="true"' in host.text
    for page in (f"/r/{room['token']}", f"/r/{room['token']}/wall"):
        answer = await client.http.get(page, headers=me)
        assert answer.status_code == 200 and "account-nav" not in answer.text, page


async def test_account_pages_send_the_signed_out_to_sign_in(client: AppClient) -> None:
    for path in ("/rooms", "/account"):
        answer = await client.http.get(path, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/signin?next={path}"
    me = await signed_up_session(client, "joe@example.org")
    for path in ("/rooms", "/account", "/signin", "/signup"):
        answer = await client.http.get(path, headers=me)
        assert answer.status_code == 200 and "joe@example.org" in answer.text, path
    signup = await client.http.get("/signup")
    assert 'minlength="8"' in signup.text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/r/abc/host", "/r/abc/host"),
        ("/account?x=1", "/account?x=1"),
        (None, "/rooms"),
        ("", "/rooms"),
        ("https://evil.example/", "/rooms"),
        ("//evil.example/", "/rooms"),
        ("/\\evil.example/", "/rooms"),
        ("/ok\nLocation: x", "/rooms"),
        ("rooms", "/rooms"),
    ],
)
def test_sign_in_goes_on_only_to_this_sites_paths(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


async def test_the_sign_in_page_keeps_a_foreign_next_out(client: AppClient) -> None:
    page = await client.http.get("/signin", params={"next": "//evil.example/"})
    assert 'data-next="/rooms"' in page.text
    page = await client.http.get("/signin", params={"next": "/r/abc/host"})
    assert 'data-next="/r/abc/host"' in page.text


async def test_the_sign_in_page_offers_organisation_sign_on_only_when_configured(
    client: AppClient, make_settings: SettingsFactory
) -> None:
    """The button starts the sign-on with the page's own ``next`` as its ``return_to``; no
    button without an OpenID provider configured."""
    page = await client.http.get("/signin", params={"next": "/r/abc/host"})
    assert page.status_code == 200 and 'data-testid="sign-on-link"' not in page.text
    settings = make_settings(
        oidc_issuer="https://login.example.org/realms/acme",
        oidc_client_id="imageshark",
        oidc_client_secret="secret",
        oidc_name="Sign in with Acme",
    )
    async for configured in _app_client(settings):
        page = await configured.http.get("/signin", params={"next": "/r/abc/host"})
        assert page.status_code == 200
        assert 'href="/api/oidc/start?return_to=%2Fr%2Fabc%2Fhost"' in page.text
        assert "Sign in with Acme" in page.text
        foreign = await configured.http.get("/signin", params={"next": "//evil.example/"})
        assert 'href="/api/oidc/start?return_to=%2Frooms"' in foreign.text
