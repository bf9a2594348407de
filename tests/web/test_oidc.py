"""Organisation sign-on (web/accounts/oidc.py, web/accounts/oidc_endpoints.py): the whole code
flow against a real certified OpenID Provider (npm ``oidc-provider``, tests/oidc_provider.py),
its refusals, and the ID token checks on tokens made here."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import httpx2
import pytest
from asgi_lifespan import LifespanManager
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet, OctKey, RSAKey
from openapi_spec_validator import validate
from pydantic import SecretStr, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.conftest import SettingsFactory
from tests.oidc_provider import (
    CALLBACK_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    OidcProvider,
    query_of,
    sign_in_at_provider,
)
from tests.production.processes import free_port
from web.accounts.oidc import (
    METADATA_SECONDS,
    STATE_COOKIE,
    OidcClient,
    ProviderMetadata,
    VerifiedIdentity,
    verify_id_token,
)
from web.accounts.session_cookie import SESSION_COOKIE
from web.app import create_app
from web.errors import ApiError
from web.logs import redact_query_secrets
from web.settings import Settings
from web.signing import SigningSecret

processes = pytest.mark.processes  # the provider is a Node process


async def linked(request: Request, identity: VerifiedIdentity, return_to: str) -> Response:
    """The accounts code's stand-in: answers what it was given."""
    return JSONResponse(
        {
            "issuer": identity.issuer,
            "subject": identity.subject,
            "email": identity.email,
            "email_verified": identity.email_verified,
            "name": identity.name,
            "return_to": return_to,
        }
    )


async def app_client(settings: Settings, **hooks: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, renditions_on_demand=True, **hooks)
    async with LifespanManager(app, startup_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def sign_on_settings(make_settings: SettingsFactory, issuer: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "oidc_issuer": issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_name": "Sign in with Acme",
    }
    return make_settings(**(values | overrides))


@pytest.fixture
async def provider() -> AsyncIterator[OidcProvider]:
    server = OidcProvider()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def app(
    make_settings: SettingsFactory, provider: OidcProvider
) -> AsyncIterator[httpx.AsyncClient]:
    async for http in app_client(
        sign_on_settings(make_settings, provider.issuer), on_identity=linked
    ):
        yield http


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    """The user's browser at the provider (keeps its cookies; redirects followed by hand)."""
    async with httpx.AsyncClient() as http:
        yield http


async def start(app: httpx.AsyncClient, return_to: str = "/host") -> tuple[str, str]:
    """``GET /api/oidc/start``: (the provider's authorization URL, the state cookie)."""
    response = await app.get("/api/oidc/start", params={"return_to": return_to})
    assert response.status_code == 302, response.text
    cookie = response.cookies[STATE_COOKIE]
    app.cookies.clear()  # each test says which cookie the callback carries
    return response.headers["location"], cookie


async def callback(app: httpx.AsyncClient, url: str, cookie: str | None) -> httpx.Response:
    """The browser coming back to the app at ``url``, carrying ``cookie`` (None: none)."""
    app.cookies.clear()
    headers = {"cookie": f"{STATE_COOKIE}={cookie}"} if cookie is not None else {}
    return await app.get(url.removeprefix("http://testserver"), headers=headers)


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


@processes
async def test_code_flow_signs_in_with_the_verified_identity(
    app: httpx.AsyncClient, browser: httpx.AsyncClient, provider: OidcProvider
) -> None:
    started = await app.get("/api/oidc/start", params={"return_to": "/host?room=1"})
    assert started.status_code == 302
    set_cookie = started.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie
    assert "path=/api/oidc" in set_cookie
    authorization = started.headers["location"]
    sent = {name: values[0] for name, values in parse_qs(urlsplit(authorization).query).items()}
    assert authorization.startswith(f"{provider.issuer}/auth?")
    assert sent["client_id"] == CLIENT_ID and sent["response_type"] == "code"
    assert sent["redirect_uri"] == CALLBACK_URL
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert set(sent["scope"].split()) == {"openid", "email", "profile"}
    assert sent["state"] and sent["nonce"] and sent["state"] != sent["nonce"]
    cookie = started.cookies[STATE_COOKIE]
    app.cookies.clear()

    back = await sign_in_at_provider(browser, authorization, "alice")
    assert query_of(back)["state"] == sent["state"]
    signed_in = await callback(app, back, cookie)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json() == {
        "issuer": provider.issuer,
        "subject": "alice",
        "email": "alice@example.org",
        "email_verified": True,
        "name": "Alice Example",
        "return_to": "/host?room=1",
    }
    assert signed_in.headers["cache-control"] == "no-store"
    assert f'{STATE_COOKIE}=""' in signed_in.headers["set-cookie"]  # the flow's cookie goes

    # The same answer again (a replayed callback): the code was used once.
    replayed = await callback(app, back, cookie)
    assert replayed.status_code == 401 and error_code(replayed) == "oidc_failed"
    # The access log never shows the code.
    assert query_of(back)["code"] not in redact_query_secrets(f"GET {back} HTTP/1.1")


@processes
async def test_email_from_userinfo_when_the_id_token_leaves_it_out(
    make_settings: SettingsFactory, browser: httpx.AsyncClient
) -> None:
    """A provider that keeps the ID token to the bare claims (oidc-provider's default for
    the code flow): the e-mail comes from the userinfo endpoint, for the same subject."""
    strict = OidcProvider(claims_in_userinfo=True)
    await strict.start()
    try:
        settings = sign_on_settings(make_settings, strict.issuer)
        async for app in app_client(settings, on_identity=linked):
            authorization, cookie = await start(app)
            signed_in = await callback(
                app, await sign_in_at_provider(browser, authorization, "alice"), cookie
            )
            assert signed_in.status_code == 200, signed_in.text
            assert signed_in.json()["email"] == "alice@example.org"
            assert signed_in.json()["email_verified"] is True
            assert signed_in.json()["subject"] == "alice"
    finally:
        await strict.stop()


@processes
async def test_forged_or_declined_answers_are_refused_without_spending_the_code(
    app: httpx.AsyncClient, browser: httpx.AsyncClient, provider: OidcProvider
) -> None:
    authorization, cookie = await start(app)
    back = await sign_in_at_provider(browser, authorization, "alice")
    answer = query_of(back)
    other_state = back.replace(answer["state"], answer["state"][:-2] + "xx")
    for url, sent_cookie in (
        (other_state, cookie),  # the state in the answer is not the cookie's
        (back, cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB")),  # forged
        (back, None),  # no cookie: the flow started in another browser
        (back.replace(answer["state"], "%C3%A9t%C3%A9"), cookie),  # not even ASCII
    ):
        refused = await callback(app, url, sent_cookie)
        assert refused.status_code == 400, refused.text
        assert error_code(refused) == "oidc_state_mismatch"
    # The provider's refusal (the user declined) with the right state.
    declined = await callback(
        app, f"{CALLBACK_URL}?error=access_denied&state={answer['state']}", cookie
    )
    assert declined.status_code == 401 and error_code(declined) == "oidc_failed"
    # RFC 9207: an answer naming another issuer (a mix-up) is refused before the code is sent.
    assert answer["iss"] == provider.issuer
    mixed_up = f"{CALLBACK_URL}?{urlencode(answer | {'iss': 'https://evil.example'})}"
    refused = await callback(app, mixed_up, cookie)
    assert refused.status_code == 401 and error_code(refused) == "oidc_failed"
    # None of these spent the code: the genuine pair still signs in.
    assert (await callback(app, back, cookie)).status_code == 200


@processes
async def test_an_answer_replayed_into_another_flow_is_refused(
    app: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    """A code (and so its ID token) taken from one sign-on and brought into another's
    callback: with that flow's state the provider refuses the code (PKCE: the other flow's
    verifier), and with its own state the other flow's cookie does not match."""
    first_url, first_cookie = await start(app)
    second_url, second_cookie = await start(app)
    first_back = await sign_in_at_provider(browser, first_url, "alice")
    second_state = query_of(second_url)["state"]
    first_state = query_of(first_back)["state"]

    crossed = await callback(app, first_back, second_cookie)
    assert crossed.status_code == 400 and error_code(crossed) == "oidc_state_mismatch"
    restated = await callback(app, first_back.replace(first_state, second_state), second_cookie)
    assert restated.status_code == 401 and error_code(restated) == "oidc_failed"
    assert first_cookie != second_cookie


@processes
async def test_unverified_email_is_refused(
    app: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    authorization, cookie = await start(app)
    refused = await callback(app, await sign_in_at_provider(browser, authorization, "bob"), cookie)
    assert refused.status_code == 403 and error_code(refused) == "email_not_verified"


@processes
async def test_wrong_client_secret_fails_the_exchange(
    make_settings: SettingsFactory, provider: OidcProvider, browser: httpx.AsyncClient
) -> None:
    settings = sign_on_settings(make_settings, provider.issuer, oidc_client_secret="not-it")
    async for app in app_client(settings, on_identity=linked):
        authorization, cookie = await start(app)
        back = await sign_in_at_provider(browser, authorization, "alice")
        refused = await callback(app, back, cookie)
        assert refused.status_code == 401 and error_code(refused) == "oidc_failed"


@processes
async def test_provider_gone_mid_flow_is_unavailable(
    make_settings: SettingsFactory, browser: httpx.AsyncClient
) -> None:
    """The provider stops between the user's sign-in there and the code's redemption."""
    server = OidcProvider()
    await server.start()
    try:
        async for app in app_client(
            sign_on_settings(make_settings, server.issuer), on_identity=linked
        ):
            authorization, cookie = await start(app)
            back = await sign_in_at_provider(browser, authorization, "alice")
            await server.stop()
            refused = await callback(app, back, cookie)
            assert refused.status_code == 503 and error_code(refused) == "oidc_unavailable"
            assert refused.headers["retry-after"] == "30"
    finally:
        await server.stop()


@processes
async def test_a_verified_sign_on_signs_in_to_the_account_of_that_address(
    make_settings: SettingsFactory, provider: OidcProvider, browser: httpx.AsyncClient
) -> None:
    """The service's own hook: the first sign-on creates the account of the verified address
    (marked verified), a later one signs in to the same account, and an account signed up
    with a password for that address is the one signed in to."""
    settings = sign_on_settings(make_settings, provider.issuer)
    async for app in app_client(settings):
        signed_up = await app.post(
            "/api/accounts", json={"email": "alice@Example.ORG", "password": "correct horse"}
        )
        assert signed_up.status_code == 201, signed_up.text
        accounts = []
        for _ in range(2):
            authorization, cookie = await start(app, return_to="/rooms")
            back = await sign_in_at_provider(browser, authorization, "alice")
            answer = await callback(app, back, cookie)
            assert answer.status_code == 303, answer.text
            assert answer.headers["location"] == "/rooms"
            session = answer.cookies[SESSION_COOKIE]
            app.cookies.clear()
            me = await app.get("/api/me", headers={"cookie": f"{SESSION_COOKIE}={session}"})
            assert me.status_code == 200, me.text
            accounts.append(me.json())
        assert accounts[0] == accounts[1]
        assert accounts[0]["email"] == "alice@example.org" and accounts[0]["email_verified"]
        # The password still signs in to the same account.
        by_password = await app.post(
            "/api/session", json={"email": "alice@example.org", "password": "correct horse"}
        )
        assert by_password.status_code == 200 and by_password.json() == accounts[0]


@processes
async def test_with_sign_up_closed_an_unknown_address_is_not_created(
    make_settings: SettingsFactory, provider: OidcProvider, browser: httpx.AsyncClient
) -> None:
    async for app in app_client(sign_on_settings(make_settings, provider.issuer, signup="closed")):
        authorization, cookie = await start(app)
        back = await sign_in_at_provider(browser, authorization, "alice")
        answer = await callback(app, back, cookie)
        assert answer.status_code == 403 and error_code(answer) == "signup_closed"
        assert SESSION_COOKIE not in answer.cookies


async def test_unreachable_provider_is_unavailable(make_settings: SettingsFactory) -> None:
    issuer = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async for app in app_client(sign_on_settings(make_settings, issuer), on_identity=linked):
        refused = await app.get("/api/oidc/start")
        assert refused.status_code == 503 and error_code(refused) == "oidc_unavailable"
        assert refused.headers["retry-after"] == "30"
        assert STATE_COOKIE not in refused.cookies


async def test_return_to_must_be_a_path_here(make_settings: SettingsFactory) -> None:
    """Checked before the provider is asked anything (none listens here)."""
    issuer = f"http://127.0.0.1:{free_port()}"
    async for app in app_client(sign_on_settings(make_settings, issuer)):
        for bad in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "host", "/a b"):
            refused = await app.get("/api/oidc/start", params={"return_to": bad})
            assert refused.status_code == 400, bad
            assert error_code(refused) == "invalid_return_to"


async def test_routes_exist_only_when_configured(make_settings: SettingsFactory) -> None:
    async for app in app_client(make_settings()):
        for path in ("/api/oidc/start", "/api/oidc/callback"):
            assert (await app.get(path)).status_code == 404
        assert "/api/oidc/start" not in (await app.get("/openapi.json")).json()["paths"]
    issuer = f"http://127.0.0.1:{free_port()}"
    async for app in app_client(sign_on_settings(make_settings, issuer)):
        document = (await app.get("/openapi.json")).json()
        validate(document)  # the sign-on operations make a valid OpenAPI 3.1 document
        paths = document["paths"]
        assert {"/api/oidc/start", "/api/oidc/callback"} <= set(paths)
        callback_errors = paths["/api/oidc/callback"]["get"]["responses"]
        assert {"303", "400", "401", "403", "422", "503"} <= set(callback_errors)
        no_flow = await app.get("/api/oidc/callback", params={"code": "x", "state": "y"})
        assert no_flow.status_code == 400 and error_code(no_flow) == "oidc_state_mismatch"


def test_settings_all_or_nothing() -> None:
    given = {
        "oidc_issuer": "https://login.example.org/",
        "oidc_client_id": "imageshark",
        "oidc_client_secret": "very-secret",
    }
    full = Settings(**given)
    assert full.oidc_enabled and full.oidc_scopes == "openid email profile"
    assert full.oidc_button_label == "Sign in with your organisation"
    assert "very-secret" not in repr(full) and "very-secret" not in str(full.model_dump())
    assert not Settings(oidc_issuer="", oidc_client_id="", oidc_client_secret="").oidc_enabled
    named = Settings(**given, oidc_name="Sign in with Acme")
    assert named.oidc_button_label == "Sign in with Acme"
    with pytest.raises(ValidationError, match="missing: IMAGESHARK_OIDC_CLIENT_SECRET"):
        Settings(oidc_issuer="https://login.example.org", oidc_client_id="imageshark")
    with pytest.raises(ValidationError, match="missing: IMAGESHARK_OIDC_ISSUER"):
        Settings(oidc_client_id="imageshark", oidc_client_secret="s")
    with pytest.raises(ValidationError, match="IMAGESHARK_OIDC_NAME needs"):
        Settings(oidc_name="Sign in with Acme")
    with pytest.raises(ValidationError, match="not an https:// URL"):
        Settings(**(given | {"oidc_issuer": "http://login.example.org"}))
    with pytest.raises(ValidationError, match="must include email"):
        Settings(**given, oidc_scopes="openid profile")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("IMAGESHARK_OIDC_ISSUER", "https://login.example.org")
        env.setenv("IMAGESHARK_OIDC_CLIENT_ID", "imageshark")
        env.setenv("IMAGESHARK_OIDC_CLIENT_SECRET", "very-secret")
        env.setenv("IMAGESHARK_OIDC_SCOPES", "openid  email")
        from_env = Settings()
        assert from_env.oidc_enabled and from_env.oidc_scopes == "openid email"


# --- ID token checks, on tokens signed here --------------------------------------------------

ISSUER = "https://login.example.org"
NONCE = "the-nonce"
KEY = RSAKey.generate_key(2048, parameters={"kid": "key-1"})
METADATA = ProviderMetadata(
    issuer=ISSUER,
    authorization_endpoint=f"{ISSUER}/auth",
    token_endpoint=f"{ISSUER}/token",
    jwks_uri=f"{ISSUER}/jwks",
    userinfo_endpoint=None,
    token_auth_method="client_secret_basic",
    algorithms=frozenset({"RS256"}),
)


def id_token(now: int, key: Any = KEY, algorithm: str = "RS256", **changes: Any) -> str:
    claims = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": CLIENT_ID,
        "exp": now + 300,
        "iat": now,
        "nonce": NONCE,
        "email": "alice@example.org",
        "email_verified": True,
    }
    claims.update(changes)
    header = {"alg": algorithm, "kid": key.kid}
    return jwt.encode(header, {k: v for k, v in claims.items() if v is not None}, key)


def verify(token: str, now: int, keys: KeySet | None = None) -> dict[str, Any]:
    public = keys or KeySet([RSAKey.import_key(KEY.as_dict(private=False))])
    return verify_id_token(token, public, METADATA, client_id=CLIENT_ID, nonce=NONCE, now=now)


def test_id_token_checks() -> None:
    now = int(time.time())
    assert verify(id_token(now), now)["sub"] == "alice"
    assert verify(id_token(now - 330), now)["sub"] == "alice"  # expired 30 s ago: leeway
    both = id_token(now, aud=[CLIENT_ID, "other"], azp=CLIENT_ID)
    assert verify(both, now)["azp"] == CLIENT_ID
    refused = {
        "another nonce": id_token(now, nonce="replayed"),
        "no nonce": id_token(now, nonce=None),
        "another audience": id_token(now, aud="someone-else"),
        "several audiences, no azp": id_token(now, aud=[CLIENT_ID, "other"]),
        "another azp": id_token(now, azp="other"),
        "another issuer": id_token(now, iss="https://evil.example"),
        "expired": id_token(now - 400),
        "issued in the future": id_token(now + 300),
        "no sub": id_token(now, sub=None),
        "signed by another key": id_token(
            now, key=RSAKey.generate_key(2048, parameters={"kid": "key-1"})
        ),
        "HMAC with the client secret": id_token(
            now,
            key=OctKey.import_key(CLIENT_SECRET * 2, parameters={"kid": "key-1"}),
            algorithm="HS256",
        ),
    }
    for what, token in refused.items():
        with pytest.raises(ApiError) as refusal:
            verify(token, now)
        assert refusal.value.code == "oidc_failed", what
    rotated = RSAKey.generate_key(2048, parameters={"kid": "key-2"})
    with pytest.raises(InvalidKeyIdError):  # the client fetches the key set again on this
        verify(id_token(now, key=rotated), now)


class RotatingProvider:
    """An in-process stand-in for a provider's discovery, key set and token endpoints (an
    httpx2 mock transport) whose signing key the test rotates; counts what was fetched."""

    def __init__(self) -> None:
        self.key = KEY
        self.nonce = ""
        self.fetched: list[str] = []
        self.now = float(int(time.time()))

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        self.fetched.append(path)
        if path == "/.well-known/openid-configuration":
            document = {
                "issuer": ISSUER,
                "authorization_endpoint": f"{ISSUER}/auth",
                "token_endpoint": f"{ISSUER}/token",
                "jwks_uri": f"{ISSUER}/jwks",
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
            }
            return httpx2.Response(200, json=document)
        if path == "/jwks":
            return httpx2.Response(200, json={"keys": [self.key.as_dict(private=False)]})
        assert path == "/token"
        form = parse_qs(request.content.decode())
        assert form["client_secret"] == [CLIENT_SECRET]  # _post, as advertised
        assert "authorization" not in request.headers
        assert len(form["code_verifier"][0]) >= 43
        token = id_token(int(self.now), key=self.key, nonce=self.nonce)
        return httpx2.Response(
            200, json={"access_token": "a", "token_type": "Bearer", "id_token": token}
        )

    async def sign_on(self, client: OidcClient) -> VerifiedIdentity:
        url, cookie = await client.begin("/", CALLBACK_URL)
        sent = query_of(url)
        self.nonce = sent["nonce"]
        finished = await client.finish({"code": "c", "state": sent["state"]}, cookie)
        return finished.identity


async def test_discovery_and_keys_are_cached_and_fetched_again_on_rotation() -> None:
    provider = RotatingProvider()
    client = OidcClient(
        ISSUER,
        CLIENT_ID,
        SecretStr(CLIENT_SECRET),
        "openid email",
        SigningSecret(SecretStr("signing-key")),
        clock=lambda: provider.now,
        transport=httpx2.MockTransport(provider.handle),
    )
    try:
        assert (await provider.sign_on(client)).email == "alice@example.org"
        assert (await provider.sign_on(client)).subject == "alice"
        discovery = "/.well-known/openid-configuration"
        assert provider.fetched == [discovery, "/token", "/jwks", "/token"]
        provider.key = RSAKey.generate_key(2048, parameters={"kid": "key-2"})  # rotation
        assert (await provider.sign_on(client)).subject == "alice"
        assert provider.fetched.count("/jwks") == 2 and provider.fetched.count(discovery) == 1
        provider.now += METADATA_SECONDS + 1
        assert (await provider.sign_on(client)).subject == "alice"
        assert provider.fetched.count(discovery) == 2 and provider.fetched.count("/jwks") == 3
    finally:
        await client.close()
