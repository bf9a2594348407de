"""HTTP routes of organisation sign-on: start at the provider, come back to the callback.

Served only when ``IMAGESHARK_OIDC_ISSUER`` is set (:func:`operations` is not called
otherwise). What a verified identity leads to is the
:data:`IdentityHook` :func:`web.app.create_app` takes: the host account of the verified address
signed in (:func:`web.accounts.endpoints.organisation_sign_in`); :func:`not_linked` answers
``501 oidc_not_linked`` instead (the tests of the protocol alone).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from web.accounts.oidc import STATE_COOKIE, STATE_SECONDS, OidcClient, VerifiedIdentity
from web.errors import ApiError
from web.services import services
from web.wire import Answer, Operation, Parameter

START_PATH = "/api/oidc/start"
CALLBACK_PATH = "/api/oidc/callback"
COOKIE_PATH = "/api/oidc"
MAX_RETURN_TO_CHARS = 2048

IdentityHook = Callable[[Request, VerifiedIdentity, str], Awaitable[Response]]
"""What a finished sign-on leads to: ``(request, identity, return_to) -> response`` (the
accounts code signs the host in and redirects to ``return_to``, a same-origin path)."""


def invalid_return_to() -> ApiError:
    """A new 400 ``invalid_return_to``."""
    return ApiError(
        400, "invalid_return_to", "'return_to' must be a path on this site, such as /host."
    )


def same_origin_path(value: str | None) -> str:
    """``value`` if it is a path on this site (``/...``, not ``//host`` nor ``/\\host``, which
    browsers read as another host), else a refusal; ``/`` when absent.

    :raises ApiError: 400 ``invalid_return_to``.
    """
    if value is None or value == "":
        return "/"
    parts = urlsplit(value)
    if (
        len(value) > MAX_RETURN_TO_CHARS
        or not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or parts.scheme
        or parts.netloc
        or any(ord(char) < 0x21 or char == "\\" for char in value)
    ):
        raise invalid_return_to()
    return value


def redirect_uri(request: Request) -> str:
    """The callback's absolute URL: ``IMAGESHARK_PUBLIC_BASE_URL`` + :data:`CALLBACK_PATH`,
    or the request's own scheme and host (behind trusted proxies, their X-Forwarded-Proto)
    when it is unset. Register it at the provider."""
    base = services(request).settings.public_base_url or str(request.base_url)
    return base.rstrip("/") + CALLBACK_PATH


async def not_linked(request: Request, identity: VerifiedIdentity, return_to: str) -> Response:
    """A callback hook that signs nobody in: ``501 oidc_not_linked``."""
    raise ApiError(
        501,
        "oidc_not_linked",
        "Organisation sign-on works, but host accounts to sign in to are not available yet.",
    )


def _client(request: Request) -> OidcClient:
    client = services(request).oidc
    assert client is not None  # the routes exist only with a client (web/app.py)
    return client


async def start_sign_on(request: Request) -> Response:
    return_to = same_origin_path(request.query_params.get("return_to"))
    callback = redirect_uri(request)
    url, cookie = await _client(request).begin(return_to, callback)
    response = RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
    # Lax, not Strict: the provider's redirect back is a cross-site top-level navigation.
    response.set_cookie(
        STATE_COOKIE,
        cookie,
        max_age=STATE_SECONDS,
        path=COOKIE_PATH,
        secure=callback.startswith("https://"),
        httponly=True,
        samesite="lax",
    )
    return response


def operations(on_identity: IdentityHook = not_linked) -> list[Operation]:
    """The sign-on operations, their callback ending in ``on_identity``."""

    async def sign_on_callback(request: Request) -> Response:
        sign_on = await _client(request).finish(
            dict(request.query_params), request.cookies.get(STATE_COOKIE)
        )
        response = await on_identity(request, sign_on.identity, sign_on.return_to)
        response.delete_cookie(STATE_COOKIE, path=COOKIE_PATH)  # one flow, one callback
        response.headers["Cache-Control"] = "no-store"
        return response

    return [
        Operation(
            "GET",
            START_PATH,
            start_sign_on,
            "startOrganisationSignOn",
            "Start signing in with the organisation's OpenID provider",
            "sign-on",
            {
                302: Answer(
                    "Go to the provider (`Location`); the flow's signed state is set as the "
                    f"HTTP-only `{STATE_COOKIE}` cookie, valid {STATE_SECONDS // 60} minutes.",
                    None,
                    {"Location": "The provider's authorization URL.", "Set-Cookie": "State."},
                )
            },
            {
                400: ("invalid_return_to",),
                401: ("oidc_failed",),
                503: ("oidc_unavailable",),
            },
            parameters=(
                Parameter(
                    "return_to",
                    "query",
                    "Path on this site to go to after signing in (default `/`).",
                ),
            ),
            description="Present only when organisation sign-on is configured "
            "(`IMAGESHARK_OIDC_ISSUER`).",
        ),
        Operation(
            "GET",
            CALLBACK_PATH,
            sign_on_callback,
            "finishOrganisationSignOn",
            "The provider's redirect back: verify the sign-in",
            "sign-on",
            {
                303: Answer(
                    "Signed in to the host account of the verified address (created at the "
                    "first sign-on), with the session cookie; on to `return_to`.",
                    None,
                    {"Location": "The `return_to` path given at the start."},
                )
            },
            {
                400: ("oidc_state_mismatch",),
                401: ("oidc_failed",),
                403: ("email_not_verified", "signup_closed", "account_disabled"),
                422: ("invalid_email",),
                503: ("oidc_unavailable",),
            },
            parameters=(
                Parameter("code", "query", "The authorization code."),
                Parameter("state", "query", "The state sent at the start."),
                Parameter("iss", "query", "The provider's issuer (RFC 9207)."),
                Parameter("error", "query", "The provider's refusal, instead of a code."),
            ),
            description="Present only when organisation sign-on is configured. Accounts are "
            "linked by the verified e-mail address.",
        ),
    ]
