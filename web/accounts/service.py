"""Account rules: sign-up, sign-in, sessions (their cookie token, expiry, sign-out).

Nothing here tells whether an address has an account: sign-up answers the same for a taken
address (and creates nothing), sign-in answers the same ``401 invalid_credentials`` for an
unknown address and a wrong password, and both spend one argon2id hash either way
(:class:`~web.accounts.passwords.Passwords`). Sign-in is throttled per address and per e-mail
(docs/decisions/0026-password-hashing.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from web.accounts import mails
from web.accounts.devices import device_summary
from web.accounts.passwords import Passwords
from web.accounts.repository import (
    Account,
    AccountRepository,
    AccountSession,
    AccountToken,
    SignedIn,
)
from web.accounts.schemas import (
    PasswordResetConfirm,
    PasswordResetRequest,
    SignIn,
    SignUp,
    VerifyEmail,
    normalise_email,
    sign_up_context,
)
from web.admin.repository import AdminRepository
from web.errors import ApiError
from web.mail.mailer import Mailer, OutgoingMail
from web.rate_limits import RateLimiter
from web.rooms.service import utc_now
from web.security import digest, new_secret_key
from web.settings import Settings
from web.wire import parse_body

logger = logging.getLogger(__name__)

SESSION_COOKIE = "imageshark_session"
"""The cookie holding a session's token (its attributes: web/accounts/session_cookie.py)."""
TOUCH_SECONDS = 60
"""A session's ``last_used_at`` is written at most this often (seconds): no write per request."""
MAX_TOKEN_CHARS = 128
VERIFY = "verify"
"""``account_tokens.purpose`` of an address verification link."""
RESET = "reset"
"""``account_tokens.purpose`` of a password reset link."""


def invalid_credentials() -> ApiError:
    """A new 401 ``invalid_credentials``: the one answer for every wrong e-mail/password pair."""
    return ApiError(401, "invalid_credentials", "That e-mail address and password do not match.")


def signup_closed() -> ApiError:
    """A new 403 ``signup_closed``: sign-up is closed, or needs a valid invite."""
    return ApiError(403, "signup_closed", "Sign-up is not open on this service.")


def not_signed_in() -> ApiError:
    """A new 401 ``not_signed_in``."""
    return ApiError(401, "not_signed_in", "Sign in first (no valid session cookie).")


@dataclass(frozen=True, slots=True)
class SignedUp:
    """What sign-up answers: the same for a new address and a taken one."""

    email: str
    name: str | None
    created_at: datetime


class AccountService:
    """Account operations behind ``/api/accounts``, ``/api/session`` and ``/api/me``.

    :param repository: account and session storage.
    :param passwords: the argon2id hasher.
    :param rate_limits: ``"sign_up"`` (per client address), ``"sign_in_address"`` and
        ``"sign_in_account"`` (per e-mail, known or not).
        ``"verification_resend"`` (per account), ``"password_reset_address"`` (per client
        address) and ``"password_reset_account"`` (per e-mail, known or not).
    :param settings: ``signup``, ``session_days``, ``max_name_chars``, ``verification_hours``,
        ``password_reset_minutes``.
    :param mailer: queues the verification and reset mails (not ``enabled``: none are sent).
    :param clock: returns the current UTC time (tests pass their own).
    :param invites: where sign-up invites are spent (``IMAGESHARK_SIGNUP=invite``); without
        it every invite is unknown.
    """

    def __init__(
        self,
        repository: AccountRepository,
        passwords: Passwords,
        rate_limits: RateLimiter,
        settings: Settings,
        mailer: Mailer,
        clock: Callable[[], datetime] = utc_now,
        invites: AdminRepository | None = None,
    ) -> None:
        self.mailer = mailer
        self.repository = repository
        self.invites = invites
        self.passwords = passwords
        self.rate_limits = rate_limits
        self.settings = settings
        self.clock = clock

    @property
    def session_lifetime(self) -> timedelta:
        """How long a session lasts after its last use (``IMAGESHARK_SESSION_DAYS``)."""
        return timedelta(days=self.settings.session_days)

    async def sign_up(
        self, body: Mapping[str, Any], client_address: str, base_url: str
    ) -> SignedUp:
        """Create an account from a ``POST /api/accounts`` body (:class:`SignUp`) and queue
        the mail verifying its address.

        An address that already has an account gets the same answer and nothing changes; its
        holder is mailed that someone tried (:func:`~web.accounts.mails.taken_address_mail`).
        The password is hashed in both cases and either mail is only queued, so the answer
        takes as long. Without mail (no ``IMAGESHARK_SMTP_URL``) no mail is queued and the
        account stays unverified. With ``IMAGESHARK_SIGNUP=invite`` the body's ``invite`` is
        spent (single use) once the body is valid, before the account is created.

        :param client_address: the caller's address, for the ``sign_up`` limit.
        :param base_url: the service's base URL, for the mail's links.
        :raises ApiError: 403 ``signup_closed`` (``IMAGESHARK_SIGNUP`` is ``closed``, or
            ``invite`` and the body has no valid invite); 409 ``invite_used`` (that invite
            was used before); 429 ``rate_limited``; 422 ``invalid_email``,
            ``invalid_password``, ``invalid_name``, ``unknown_field``.
        """
        if self.settings.signup == "closed" or (
            self.settings.signup == "invite" and not body.get("invite")
        ):
            raise signup_closed()
        await self.rate_limits.hit("sign_up", client_address)
        request = parse_body(SignUp, body, context=sign_up_context(self.settings.max_name_chars))
        now = self.clock()
        if self.settings.signup == "invite":
            await self._spend_invite(str(request.invite), now)
        password_hash = await self.passwords.hash(request.password)
        account = await self.repository.create(
            email=request.email, name=request.name, password_hash=password_hash, now=now
        )
        if account is None:
            if self.mailer.enabled:
                await self._queue(mails.taken_address_mail(request.email, base_url))
            return SignedUp(email=request.email, name=request.name, created_at=now)
        if self.mailer.enabled:
            await self._mail_verification(account, base_url)
        return SignedUp(email=account.email, name=account.name, created_at=account.created_at)

    async def _spend_invite(self, token: str, now: datetime) -> None:
        use = "unknown"
        if self.invites is not None and len(token) <= MAX_TOKEN_CHARS:
            use = await self.invites.use_invite(digest(token), now)
        if use == "spent":
            raise ApiError(409, "invite_used", "This invite has been used already.")
        if use != "used":
            raise signup_closed()

    async def _queue(self, mail: OutgoingMail) -> None:
        # A stored address the mail header would read as another one (``a(b)@x`` is ``a@x``
        # to RFC 5322) is not mailed: the link would reach someone else.
        (to,) = mail.to
        if parseaddr(to)[1] != to:
            logger.warning("account mail not queued: the address does not parse as itself")
            return
        await self.mailer.send(mail)

    async def _new_token(self, purpose: str, account_id: int, lifetime: timedelta) -> str:
        token = new_secret_key()
        now = self.clock()
        await self.repository.add_token(
            purpose=purpose,
            account_id=account_id,
            token_hash=digest(token),
            now=now,
            expires_at=now + lifetime,
        )
        return token

    async def _mail_verification(self, account: Account, base_url: str) -> None:
        hours = self.settings.verification_hours
        token = await self._new_token(VERIFY, account.id, timedelta(hours=hours))
        await self._queue(mails.verification_mail(account.email, base_url, token, hours))

    async def resend_verification(self, account: Account, base_url: str) -> None:
        """Queue a new verification mail for ``account`` (earlier links keep working until
        they expire).

        :raises ApiError: 503 ``mail_unavailable``; 409 ``already_verified``; 429
            ``rate_limited`` (``verification_resend``, per account).
        """
        self.mailer.require()
        if account.email_verified:
            raise ApiError(409, "already_verified", "This address is already verified.")
        await self.rate_limits.hit("verification_resend", str(account.id))
        await self._mail_verification(account, base_url)

    async def _usable_token(self, purpose: str, token: str) -> AccountToken:
        found = await self.repository.token(purpose, digest(token))
        if found is None:
            raise ApiError(404, "token_not_found", "This link is not known (mistyped or old).")
        if found.used_at is not None:
            raise ApiError(409, "token_used", "This link was already used.")
        if found.expires_at <= self.clock():
            raise ApiError(410, "token_expired", "This link has expired; ask for a new one.")
        return found

    async def verify_email(self, body: Mapping[str, Any]) -> Account:
        """Answer a verification link: ``POST /api/accounts/verify`` (:class:`VerifyEmail`).

        :returns: the account, its address now verified.
        :raises ApiError: 404 ``token_not_found`` (unknown, or a token of another purpose);
            409 ``token_used``; 410 ``token_expired``; 422 a field of the wrong type.
        """
        request = parse_body(VerifyEmail, body)
        found = await self._usable_token(VERIFY, request.token)
        if not await self.repository.use_verification(found.id, found.account_id, self.clock()):
            raise ApiError(409, "token_used", "This link was already used.")
        account = await self.repository.by_id(found.account_id)
        assert account is not None  # the token's row goes with its account
        return account

    async def request_password_reset(
        self, body: Mapping[str, Any], client_address: str, base_url: str
    ) -> None:
        """Queue a reset link to the address of a ``POST /api/password-reset`` body
        (:class:`PasswordResetRequest`) when it has an enabled account; nothing otherwise. The
        caller answers the same either way; both ways look the address up once and draw a
        token, and the mail is only queued (docs/decisions/0026-password-hashing.md, on not
        telling which addresses have accounts).

        :raises ApiError: 503 ``mail_unavailable``; 429 ``rate_limited``
            (``password_reset_address`` per client address, ``password_reset_account`` per
            e-mail, known or not); 422 a field of the wrong type.
        """
        self.mailer.require()
        request = parse_body(PasswordResetRequest, body)
        await self.rate_limits.hit("password_reset_address", client_address)
        email = normalise_email(request.email)
        await self.rate_limits.hit("password_reset_account", (email or request.email).casefold())
        account = await self.repository.by_email(email) if email is not None else None
        minutes = self.settings.password_reset_minutes
        if account is None or account.disabled:
            new_secret_key()  # the same work as drawing a real link's token
            return
        token = await self._new_token(RESET, account.id, timedelta(minutes=minutes))
        await self._queue(mails.reset_mail(account.email, base_url, token, minutes))

    async def confirm_password_reset(self, body: Mapping[str, Any]) -> Account:
        """Set a new password with a reset link: ``POST /api/password-reset/confirm``
        (:class:`PasswordResetConfirm`). Also ends every session of the account (signed out
        everywhere) and marks its address verified (the link reached its mailbox).

        :returns: the account (not signed in: sign in with the new password).
        :raises ApiError: 404 ``token_not_found`` (unknown, or a token of another purpose);
            409 ``token_used``; 410 ``token_expired``; 422 ``invalid_password`` or a field of
            the wrong type.
        """
        request = parse_body(PasswordResetConfirm, body)
        found = await self._usable_token(RESET, request.token)
        password_hash = await self.passwords.hash(request.password)
        if not await self.repository.use_reset(
            found.id, found.account_id, password_hash, self.clock()
        ):
            raise ApiError(409, "token_used", "This link was already used.")
        account = await self.repository.by_id(found.account_id)
        assert account is not None  # the token's row goes with its account
        return account

    async def sign_in(
        self, body: Mapping[str, Any], client_address: str, user_agent: str | None
    ) -> tuple[SignedIn, str]:
        """Check a ``POST /api/session`` body (:class:`SignIn`) and open a session.

        Both limits count every attempt before the password is checked.

        :param user_agent: the request's ``User-Agent``, summarised for the session list.
        :returns: the new session with its account, and the token for its cookie (only its
            SHA-256 is stored).
        :raises ApiError: 401 ``invalid_credentials``; 403 ``account_disabled`` (right
            password, disabled account); 429 ``rate_limited``; 422 a field of the wrong type.
        """
        request = parse_body(SignIn, body)
        await self.rate_limits.hit("sign_in_address", client_address)
        email = normalise_email(request.email)
        # Case-folded: the limit of one mailbox is not multiplied by spelling it differently.
        await self.rate_limits.hit("sign_in_account", (email or request.email).casefold())
        account = await self.repository.by_email(email) if email is not None else None
        if account is None:
            await self.passwords.verify_nothing(request.password)
            raise invalid_credentials()
        if not await self.passwords.verify(account.password_hash, request.password):
            raise invalid_credentials()
        if account.disabled:
            raise ApiError(403, "account_disabled", "This account is disabled.")
        if self.passwords.needs_rehash(account.password_hash):
            await self.repository.set_password_hash(
                account.id, await self.passwords.hash(request.password)
            )
        token = new_secret_key()
        now = self.clock()
        session = await self.repository.add_session(
            account_id=account.id,
            token_hash=digest(token),
            device=device_summary(user_agent),
            now=now,
            expired_before=now - self.session_lifetime,
        )
        return SignedIn(session=session, account=account), token

    async def resolve(self, token: str | None) -> SignedIn | None:
        """The live session whose cookie holds ``token``, and its account.

        Updates the session's last use when it is older than :data:`TOUCH_SECONDS`.

        :returns: None for no token, an unknown one, a session unused for longer than
            ``session_days`` or one of a disabled account.
        """
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        found = await self.repository.signed_in(digest(token))
        if found is None or found.account.disabled:
            return None
        now = self.clock()
        if found.session.last_used_at <= now - self.session_lifetime:
            return None
        if now - found.session.last_used_at >= timedelta(seconds=TOUCH_SECONDS):
            await self.repository.touch_session(found.session.id, now)
            found = replace(found, session=replace(found.session, last_used_at=now))
        return found

    async def account_of_cookies(self, cookies: Mapping[str, str]) -> int | None:
        """The id of the account whose live session the cookie :data:`SESSION_COOKIE` among
        ``cookies`` holds (a live connection's handshake), or None: the live side's
        :data:`web.rooms.service.SessionAccount`."""
        found = await self.resolve(cookies.get(SESSION_COOKIE))
        return found.account.id if found is not None else None

    async def sign_out(self, signed_in: SignedIn) -> None:
        """End the session of this request (every replica stops accepting its cookie)."""
        await self.repository.delete_session(signed_in.account.id, signed_in.session.id)

    async def sessions(self, account: Account) -> list[AccountSession]:
        """The account's live sessions, most recently used first."""
        return await self.repository.sessions_of(account.id, self.clock() - self.session_lifetime)

    async def end_session(self, account: Account, session_id: int) -> None:
        """End one of the account's sessions.

        :raises ApiError: 404 ``session_not_found``: no such session of this account.
        """
        if not await self.repository.delete_session(account.id, session_id):
            raise ApiError(404, "session_not_found", "This account has no such session.")

    async def sign_out_everywhere(self, account: Account) -> int:
        """End every session of the account (this one too); how many there were."""
        return await self.repository.delete_sessions(account.id)

    async def sign_in_verified(
        self, email: str, name: str | None, user_agent: str | None
    ) -> tuple[SignedIn, str]:
        """Open a session for the account of an address an organisation's OpenID provider
        verified (accounts are linked by that address), creating the account when there is
        none: the provider vouches for its members, so sign-up ``invite`` does not stop
        them; ``closed`` does. A new account gets a random password nobody knows (a password
        reset gives it one).

        :param email: the verified address, as the provider gave it.
        :param name: the provider's display name, or None (cut to ``max_name_chars``).
        :returns: the new session with its account, and the token for its cookie.
        :raises ApiError: 422 ``invalid_email`` (not an address this service stores);
            403 ``account_disabled``; 403 ``signup_closed`` (no account, sign-up closed).
        """
        normal = normalise_email(email)
        if normal is None:
            raise ApiError(422, "invalid_email", "The provider's e-mail address is not usable.")
        account = await self.repository.by_email(normal)
        now = self.clock()
        if account is None:
            if self.settings.signup == "closed":
                raise ApiError(403, "signup_closed", "Sign-up is not open on this service.")
            password_hash = await self.passwords.hash(new_secret_key())
            display = name.strip()[: self.settings.max_name_chars] if name else None
            await self.repository.create(
                email=normal, name=display or None, password_hash=password_hash, now=now
            )
            account = await self.repository.by_email(normal)
            assert account is not None  # created now, or by a concurrent sign-on
        if account.disabled:
            raise ApiError(403, "account_disabled", "This account is disabled.")
        if not account.email_verified:
            await self.repository.mark_email_verified(account.id)
            account = replace(account, email_verified=True)
        token = new_secret_key()
        session = await self.repository.add_session(
            account_id=account.id,
            token_hash=digest(token),
            device=device_summary(user_agent),
            now=now,
            expired_before=now - self.session_lifetime,
        )
        return SignedIn(session=session, account=account), token
