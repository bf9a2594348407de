"""A real, certified OpenID Provider for the sign-on tests: npm ``oidc-provider`` run by
tests/oidc/provider.mjs on a free loopback port, and a user agent that signs in through it.

The provider has one client (:data:`CLIENT_ID`, :data:`CLIENT_SECRET`, the test app's
callback), requires PKCE, and two accounts: ``alice`` (verified e-mail) and ``bob``
(unverified). Its login is non-interactive: the authorization request's ``login_hint`` names
the account that signs in, and the scopes are granted at once.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.polling import poll_until
from tests.production.processes import REPO, _Process, free_port

CLIENT_ID = "imageshark-test"
CLIENT_SECRET = "test-client-secret-0123456789"
CALLBACK_URL = "http://testserver/api/oidc/callback"
"""The test app's callback (its in-process client's base URL is ``http://testserver``)."""


class OidcProvider(_Process):
    """oidc-provider on ``127.0.0.1:<free port>``.

    :param claims_in_userinfo: keep the e-mail out of the ID token (the provider's strict
        default for the code flow), so that the client reads it from the userinfo endpoint.
    """

    def __init__(self, *, claims_in_userinfo: bool = False) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "OIDC_PORT": str(self.port),
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_REDIRECT_URI": CALLBACK_URL,
            "OIDC_CLAIMS_IN_USERINFO": "1" if claims_in_userinfo else "0",
        }
        super().__init__(
            "oidc-provider",
            ["node", str(REPO / "tests" / "oidc" / "provider.mjs")],
            "oidc provider listening on",
            env,
        )

    @property
    def issuer(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 60) -> None:
        """Start it and wait until its discovery document answers."""
        await super().start(timeout)
        async with httpx.AsyncClient() as http:

            async def discovery_answers() -> bool:
                try:
                    response = await http.get(f"{self.issuer}/.well-known/openid-configuration")
                except httpx.TransportError:
                    return False
                return response.status_code == 200

            await poll_until(discovery_answers, deadline=30, what="the provider's discovery")


async def sign_in_at_provider(
    browser: httpx.AsyncClient, authorization_url: str, login: str
) -> str:
    """Play the user at the provider: follow its redirects from ``authorization_url`` (with
    ``login_hint=login`` added) until it sends the browser back to the test app.

    :param browser: a client keeping the provider's cookies, as a browser does.
    :returns: the callback URL the provider redirected to, with its ``code``, ``state`` and
        ``iss`` (or ``error``).
    """
    url = f"{authorization_url}&login_hint={login}"
    for _ in range(10):
        response = await browser.get(url)
        assert response.status_code in (302, 303), (response.status_code, response.text[:500])
        url = str(response.url.join(response.headers["location"]))
        if url.startswith(CALLBACK_URL):
            return url
    raise AssertionError("the provider did not send the browser back")


def query_of(url: str) -> dict[str, str]:
    """The query parameters of ``url``, one value each."""
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
