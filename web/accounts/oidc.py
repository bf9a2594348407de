"""Organisation sign-on: an OpenID Connect client (authorization code flow with PKCE).

:class:`OidcClient` is the whole protocol, with no Starlette in it: :meth:`OidcClient.begin`
makes the provider's authorization URL and the value of a signed state cookie;
:meth:`OidcClient.finish` checks the provider's answer against that cookie, redeems the code
and validates the ID token (:func:`verify_id_token`), and returns the
:class:`VerifiedIdentity`, whose verified e-mail is what host accounts are linked by. The HTTP
side is ``web/accounts/oidc_endpoints.py``.

Authlib's httpx2 client makes the authorization URL and redeems the code (PKCE S256, client
authentication); joserfc checks the ID token's signature and claims
(docs/decisions/0027-openid-connect-client.md). The flow's secrets (state, nonce, PKCE
verifier) travel in the cookie, signed with the deployment's key and valid
:data:`STATE_SECONDS`, so the replica that answers the callback need not be the one that
started the flow. Specifications: OpenID Connect Core 1.0 (sections 3.1.2-3.1.3.7, ID token
validation), OpenID Connect Discovery 1.0, RFC 7636 (PKCE), RFC 9207 (``iss`` in the
authorization response).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc import jws, jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from pydantic import SecretStr

from web.errors import ApiError
from web.signing import SigningSecret

logger = logging.getLogger(__name__)

STATE_COOKIE = "imageshark_oidc"
STATE_SALT = "oidc-sign-on"
STATE_SECONDS = 600
"""How long a started sign-on may take at the provider, in seconds (the cookie's lifetime)."""
METADATA_SECONDS = 3600
"""How long the discovery document and the key set are reused before they are fetched again,
in seconds; a key id not in the set fetches it at once (the provider rotated its keys)."""
LEEWAY_SECONDS = 60
"""Clock difference allowed with the provider for ``exp`` and ``iat``, in seconds."""
HTTP_TIMEOUT_SECONDS = 10.0
SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""ID token algorithms accepted: asymmetric ones only, so a key from the provider's JWKS is the
only one that verifies (no ``none``, no HMAC keyed by the client secret)."""


def oidc_state_mismatch() -> ApiError:
    """A new 400 ``oidc_state_mismatch``: no, an expired or a foreign state cookie."""
    return ApiError(
        400,
        "oidc_state_mismatch",
        "This sign-in did not start here or took too long. Please start again.",
    )


def oidc_failed(reason: str) -> ApiError:
    """A new 401 ``oidc_failed``; ``reason`` (no secrets in it) is logged, not shown."""
    logger.warning("organisation sign-on refused: %s", reason)
    return ApiError(401, "oidc_failed", "The sign-in with your organisation did not succeed.")


def oidc_unavailable(reason: str) -> ApiError:
    """A new 503 ``oidc_unavailable`` with ``Retry-After``: the provider did not answer."""
    logger.warning("OpenID provider unavailable: %s", reason)
    return ApiError(
        503,
        "oidc_unavailable",
        "Your organisation's sign-in service is not reachable right now. Please retry.",
        {"Retry-After": "30"},
    )


def email_not_verified() -> ApiError:
    """A new 403 ``email_not_verified``: the provider does not vouch for the e-mail."""
    return ApiError(
        403,
        "email_not_verified",
        "Your organisation has not verified your e-mail address; verify it there first.",
    )


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """Who the provider says signed in, from a validated ID token (and userinfo).

    :ivar issuer: the provider's issuer identifier (the ID token's ``iss``).
    :ivar subject: the user's stable id at that provider (``sub``); ``(issuer, subject)`` is
        unique.
    :ivar email: the e-mail address, as the provider gave it.
    :ivar email_verified: always True (:meth:`OidcClient.finish` refuses anything else);
        kept so that callers state what they rely on.
    :ivar name: the display name (``name`` claim), or None.
    """

    issuer: str
    subject: str
    email: str
    email_verified: bool
    name: str | None


@dataclass(frozen=True, slots=True)
class SignOn:
    """A finished sign-on: the identity and where the user was going.

    :ivar identity: the verified identity.
    :ivar return_to: the same-origin path given to :meth:`OidcClient.begin`.
    """

    identity: VerifiedIdentity
    return_to: str


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What the client uses of the discovery document.

    :ivar issuer: the document's ``issuer`` (ID tokens' ``iss`` must equal it).
    :ivar token_auth_method: ``client_secret_basic`` or ``client_secret_post``, as advertised.
    :ivar algorithms: ID token algorithms accepted (advertised ones among
        :data:`SIGNING_ALGORITHMS`).
    """

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    token_auth_method: str
    algorithms: frozenset[str]


def parse_metadata(document: Any, issuer: str) -> ProviderMetadata:
    """Read a discovery document (OpenID Connect Discovery 1.0, section 3).

    :param document: the parsed JSON.
    :param issuer: the configured issuer; the document's must be the same (a trailing slash
        aside).
    :raises ApiError: 401 ``oidc_failed`` for a document that is not an object, names another
        issuer, lacks an endpoint, or offers neither secret-based client authentication nor
        an asymmetric ID token algorithm.
    """
    if not isinstance(document, dict):
        raise oidc_failed("the discovery document is not a JSON object")
    found = document.get("issuer")
    if not isinstance(found, str) or found.rstrip("/") != issuer.rstrip("/"):
        raise oidc_failed(f"the discovery document names the issuer {found!r}, not {issuer!r}")
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(name)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise oidc_failed(f"the discovery document has no {name}")
        endpoints[name] = value
    # Discovery 1.0: client_secret_basic is the default when the list is absent.
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    method = next((m for m in ("client_secret_basic", "client_secret_post") if m in methods), None)
    if method is None:
        raise oidc_failed(f"the provider offers no client secret authentication: {methods}")
    # Discovery 1.0: RS256 must be supported, and is the default.
    advertised = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = frozenset(advertised) & SIGNING_ALGORITHMS
    if not algorithms:
        raise oidc_failed(f"the provider signs ID tokens with none of ours: {advertised}")
    userinfo = document.get("userinfo_endpoint")
    return ProviderMetadata(
        issuer=found,
        authorization_endpoint=endpoints["authorization_endpoint"],
        token_endpoint=endpoints["token_endpoint"],
        jwks_uri=endpoints["jwks_uri"],
        userinfo_endpoint=userinfo if isinstance(userinfo, str) else None,
        token_auth_method=method,
        algorithms=algorithms,
    )


def verify_id_token(
    id_token: str,
    keys: KeySet,
    metadata: ProviderMetadata,
    *,
    client_id: str,
    nonce: str,
    now: int,
    leeway: int = LEEWAY_SECONDS,
) -> dict[str, Any]:
    """Validate an ID token (OpenID Connect Core 1.0, section 3.1.3.7) and return its claims.

    Checks the signature with the provider's key named by the header's ``kid``, an accepted
    algorithm, ``iss`` equal to the provider's issuer, ``aud`` containing ``client_id`` (and
    ``azp`` equal to it when there are several audiences, or whenever present), ``exp`` in the
    future and ``iat`` not, both within ``leeway`` seconds, ``sub``, and ``nonce`` equal to the
    one sent.

    :param now: the current time, in seconds since the epoch.
    :raises InvalidKeyIdError: no key of ``keys`` has the header's ``kid`` (fetch the set
        again and retry).
    :raises ApiError: 401 ``oidc_failed`` for anything else wrong.
    """
    try:
        header = jws.extract_compact(id_token.encode()).protected
    except (JoseError, ValueError) as exc:
        raise oidc_failed(f"the ID token is not a compact JWS: {exc}") from None
    algorithm = header.get("alg")
    if algorithm not in metadata.algorithms:
        raise oidc_failed(f"the ID token is signed with {algorithm!r}")
    try:
        token = jwt.decode(id_token, keys, algorithms=[algorithm])
    except InvalidKeyIdError:
        raise
    except (JoseError, ValueError) as exc:
        raise oidc_failed(f"the ID token's signature does not verify: {exc}") from None
    claims = token.claims
    registry = jwt.JWTClaimsRegistry(
        now=now,
        leeway=leeway,
        iss={"essential": True, "value": metadata.issuer},
        sub={"essential": True},
        aud={"essential": True, "value": client_id},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise oidc_failed(f"the ID token's claims are not valid: {exc}") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != client_id:
        raise oidc_failed("the ID token was issued to another party (azp)")
    return claims


class OidcClient:
    """The OpenID Connect client of one provider, shared by every request of a replica.

    :param issuer: the provider's issuer URL (``IMAGESHARK_OIDC_ISSUER``).
    :param client_id: this service's client id there.
    :param client_secret: its client secret.
    :param scopes: the scopes asked for, space-separated (with ``openid`` and ``email``).
    :param signing: the deployment's signing key (the state cookie is signed with it).
    :param clock: the current time in seconds since the epoch (tests move it).
    :param transport: an httpx2 transport to reach the provider through (tests); default: the
        network.
    """

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: SecretStr,
        scopes: str,
        signing: SigningSecret,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.scopes = scopes
        self.signing = signing
        self.clock = clock
        self._http = AsyncOAuth2Client(
            client_id=client_id,
            client_secret=client_secret.get_secret_value(),
            code_challenge_method="S256",
            timeout=HTTP_TIMEOUT_SECONDS,
            transport=transport,
        )
        self._metadata: ProviderMetadata | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0

    async def close(self) -> None:
        """Close the HTTP connections to the provider."""
        await self._http.aclose()

    async def begin(self, return_to: str, redirect_uri: str) -> tuple[str, str]:
        """Start a sign-on.

        :param return_to: the same-origin path to go to afterwards (checked by the caller).
        :param redirect_uri: this service's callback URL, as registered at the provider.
        :returns: (the provider's authorization URL to redirect the browser to, the value of
            the :data:`STATE_COOKIE` to set), the cookie valid :data:`STATE_SECONDS`.
        :raises ApiError: 503 ``oidc_unavailable`` when the discovery document cannot be
            fetched; 401 ``oidc_failed`` when it is not usable.
        """
        metadata = await self.metadata()
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48)  # 64 characters; RFC 7636 allows 43-128
        url, _ = self._http.create_authorization_url(
            metadata.authorization_endpoint,
            state=state,
            code_verifier=verifier,
            nonce=nonce,
            redirect_uri=redirect_uri,
            scope=self.scopes,
        )
        cookie = self._serializer().dumps(
            {"s": state, "n": nonce, "v": verifier, "r": return_to, "u": redirect_uri}
        )
        return str(url), cookie

    async def finish(self, query: Mapping[str, str], cookie: str | None) -> SignOn:
        """Finish a sign-on from the provider's redirect back to the callback.

        :param query: the callback's query parameters (``code``, ``state``, ``iss``, or
            ``error``).
        :param cookie: the :data:`STATE_COOKIE` value :meth:`begin` made, or None.
        :returns: the verified identity and the path to return to.
        :raises ApiError: 400 ``oidc_state_mismatch`` (no, expired, tampered or another
            flow's cookie; another ``state``); 401 ``oidc_failed`` (the provider answered an
            error, refused the code, or the ID token is not valid); 403 ``email_not_verified``
            (no e-mail, or one the provider does not call verified); 503 ``oidc_unavailable``.
        """
        flow = self._load_state(cookie)
        sent = str(query.get("state", "")).encode()  # bytes: compare_digest refuses non-ASCII str
        if not secrets.compare_digest(sent, flow["s"].encode()):
            raise oidc_state_mismatch()
        if "error" in query:  # the user declined, or the provider refused: nothing to ask it
            raise oidc_failed(f"the provider answered {query['error']!r}")
        metadata = await self.metadata()
        if "iss" in query and query["iss"] != metadata.issuer:  # RFC 9207: mix-up defence
            raise oidc_failed(f"the answer comes from the issuer {query['iss']!r}")
        code = query.get("code")
        if not code:
            raise oidc_failed("the provider's answer has no code")
        tokens = await self._redeem(metadata, code, flow)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise oidc_failed("the token response has no ID token")
        claims = await self._verified_claims(metadata, id_token, flow["n"])
        if "email" not in claims and metadata.userinfo_endpoint is not None:
            claims = {**claims, **await self._userinfo(metadata, tokens, claims["sub"])}
        return SignOn(identity_from_claims(claims), flow["r"])

    async def metadata(self) -> ProviderMetadata:
        """The provider's discovery document, fetched at most every :data:`METADATA_SECONDS`.

        :raises ApiError: 503 ``oidc_unavailable``, 401 ``oidc_failed`` (see :meth:`begin`).
        """
        if self._metadata is None or self.clock() - self._metadata_at > METADATA_SECONDS:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            self._metadata = parse_metadata(await self._get_json(url), self.issuer)
            self._metadata_at = self.clock()
        return self._metadata

    async def _key_set(self, metadata: ProviderMetadata, *, refresh: bool = False) -> KeySet:
        if refresh or self._keys is None or self.clock() - self._keys_at > METADATA_SECONDS:
            document = await self._get_json(metadata.jwks_uri)
            try:
                self._keys = KeySet.import_key_set(document)
            except (JoseError, ValueError, KeyError, TypeError) as exc:
                raise oidc_failed(f"the provider's key set is not usable: {exc}") from None
            self._keys_at = self.clock()
        return self._keys

    async def _verified_claims(
        self, metadata: ProviderMetadata, id_token: str, nonce: str
    ) -> dict[str, Any]:
        keys = await self._key_set(metadata)
        for refresh in (False, True):
            if refresh:
                # The ID token came straight from the token endpoint, so an unknown kid is the
                # provider's rotation, not a forger's: fetching again cannot be driven by one.
                keys = await self._key_set(metadata, refresh=True)
            try:
                return verify_id_token(
                    id_token,
                    keys,
                    metadata,
                    client_id=self.client_id,
                    nonce=nonce,
                    now=int(self.clock()),
                )
            except InvalidKeyIdError:
                continue
        raise oidc_failed("no key of the provider's key set signed the ID token")

    async def _redeem(
        self, metadata: ProviderMetadata, code: str, flow: Mapping[str, str]
    ) -> dict[str, Any]:
        """The token endpoint's answer to the code (with the PKCE verifier)."""
        try:
            tokens = await self._http.fetch_token(
                metadata.token_endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=flow["v"],
                redirect_uri=flow["u"],
                auth=self._http.client_auth(metadata.token_auth_method),
            )
        except OAuthError as exc:
            raise oidc_failed(f"the token endpoint refused the code: {exc.error}") from None
        except httpx2.HTTPStatusError as exc:
            if exc.response.status_code >= 500:
                raise oidc_unavailable(f"token endpoint: {exc.response.status_code}") from None
            raise oidc_failed(f"token endpoint: {exc.response.status_code}") from None
        except httpx2.HTTPError as exc:
            raise oidc_unavailable(f"token endpoint: {exc!r}") from None
        if not isinstance(tokens, dict):
            raise oidc_failed("the token response is not a JSON object")
        return dict(tokens)

    async def _userinfo(
        self, metadata: ProviderMetadata, tokens: Mapping[str, Any], subject: str
    ) -> dict[str, Any]:
        """The userinfo claims, for providers that keep the e-mail out of the ID token
        (Core 1.0 section 5.3.2: its ``sub`` must be the ID token's)."""
        access_token = tokens.get("access_token")
        if not isinstance(access_token, str) or metadata.userinfo_endpoint is None:
            return {}
        document = await self._get_json(
            metadata.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"}
        )
        if not isinstance(document, dict) or document.get("sub") != subject:
            raise oidc_failed("the userinfo answer is about another subject")
        return {
            name: document[name] for name in ("email", "email_verified", "name") if name in document
        }

    async def _get_json(self, url: str, headers: Mapping[str, str] | None = None) -> Any:
        try:
            response = await self._http.request("GET", url, headers=headers, withhold_token=True)
        except httpx2.HTTPError as exc:
            raise oidc_unavailable(f"{url}: {exc!r}") from None
        if response.status_code >= 500:
            raise oidc_unavailable(f"{url}: {response.status_code}")
        if response.status_code != 200:
            raise oidc_failed(f"{url} answered {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise oidc_failed(f"{url} did not answer JSON") from None

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.signing.key, salt=STATE_SALT)

    def _load_state(self, cookie: str | None) -> dict[str, str]:
        if not cookie or len(cookie) > 2048:
            raise oidc_state_mismatch()
        try:
            flow = self._serializer().loads(cookie, max_age=STATE_SECONDS)
        except BadSignature:
            raise oidc_state_mismatch() from None
        if not isinstance(flow, dict) or not all(
            isinstance(flow.get(key), str) for key in ("s", "n", "v", "r", "u")
        ):
            raise oidc_state_mismatch()
        return flow


def identity_from_claims(claims: Mapping[str, Any]) -> VerifiedIdentity:
    """The identity in validated claims (ID token, with userinfo's added).

    :raises ApiError: 403 ``email_not_verified`` without an e-mail, or unless
        ``email_verified`` is true (some providers send the string ``"true"``).
    """
    email = claims.get("email")
    verified = claims.get("email_verified")
    if not isinstance(email, str) or "@" not in email:
        raise email_not_verified()
    if verified is not True and verified != "true":
        raise email_not_verified()
    name = claims.get("name")
    return VerifiedIdentity(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        email=email,
        email_verified=True,
        name=name if isinstance(name, str) and name else None,
    )
