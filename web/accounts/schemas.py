"""Wire bodies of the account routes: sign-up and sign-in in, the account, its sessions and
its rooms out.

Sign-up checks its fields here (``422 invalid_email``, ``invalid_password``, ``invalid_name``);
sign-in checks only their types: any wrong pair is the same ``401 invalid_credentials``.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from pydantic import Field, ValidationInfo, model_validator

from web.errors import ApiError
from web.rooms.repository import HostRole
from web.rooms.room_settings import clean_text
from web.wire import Timestamp, WireModel

MAX_EMAIL_CHARS = 320
"""RFC 5321's limits: 64 characters before the ``@``, 255 after it."""
MIN_PASSWORD_CHARS = 8
"""NIST SP 800-63B (5.1.1.2): memorised secrets of at least 8 characters."""
MAX_PASSWORD_CHARS = 1024
"""Bounds the input of one hash; NIST asks to allow at least 64."""


def normalise_email(value: object) -> str | None:
    """``value`` as the stored e-mail address: trimmed, the domain in lower case (the local
    part keeps its case: RFC 5321 lets a mail server tell ``Ann`` from ``ann``).

    :returns: the address; None when it is not a string of the shape ``local@domain`` with
        both parts present, RFC 5321's lengths, and no space or control character.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or len(local) > 64 or len(domain) > 255:
        return None
    if any(char.isspace() or unicodedata.category(char)[0] == "C" for char in text):
        return None
    return f"{local}@{domain.lower()}"


def invalid_email() -> ApiError:
    """A new 422 ``invalid_email``."""
    return ApiError(422, "invalid_email", "That is not an e-mail address (name@example.org).")


def invalid_password() -> ApiError:
    """A new 422 ``invalid_password``: too short or too long."""
    return ApiError(
        422,
        "invalid_password",
        f"The password must have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters.",
    )


class SignUp(WireModel):
    """``POST /api/accounts``; parse with :func:`sign_up_context`."""

    email: str = Field(
        max_length=MAX_EMAIL_CHARS, description="Stored trimmed, domain lower-cased."
    )
    password: str = Field(
        min_length=MIN_PASSWORD_CHARS,
        max_length=MAX_PASSWORD_CHARS,
        description=f"{MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters.",
    )
    name: str | None = Field(
        None, description="Display name (up to `IMAGESHARK_MAX_NAME_CHARS`, 60)."
    )
    invite: str | None = Field(
        None,
        max_length=128,
        description="A sign-up invite's token (`POST /api/admin/signup-invites`); needed when "
        "`IMAGESHARK_SIGNUP` is `invite`, ignored when it is `open`.",
    )

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        checked = dict(data)
        if "email" in data:
            email = normalise_email(data["email"])
            if email is None or len(email) > MAX_EMAIL_CHARS:
                raise invalid_email()
            checked["email"] = email
        password = data.get("password")
        if isinstance(password, str) and not (
            MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS
        ):
            raise invalid_password()
        max_chars = (info.context or {})["max_name_chars"]
        checked["name"] = clean_text(
            data.get("name"), field="name", max_chars=max_chars, required=False
        )
        return checked


def sign_up_context(max_name_chars: int) -> dict[str, Any]:
    """The parse context of :class:`SignUp`.

    :param max_name_chars: longest display name (``IMAGESHARK_MAX_NAME_CHARS``).
    """
    return {"max_name_chars": max_name_chars}


class SignIn(WireModel):
    """``POST /api/session``."""

    email: str = Field(max_length=MAX_EMAIL_CHARS)
    password: str = Field(max_length=MAX_PASSWORD_CHARS)


class VerifyEmail(WireModel):
    """``POST /api/accounts/verify``: the token of a verification link."""

    token: str = Field(max_length=128)


class PasswordResetRequest(WireModel):
    """``POST /api/password-reset``: the address to mail a reset link to (if it has an
    account; the answer does not say)."""

    email: str = Field(max_length=MAX_EMAIL_CHARS)


class PasswordResetConfirm(WireModel):
    """``POST /api/password-reset/confirm``: the token of a reset link and the new password."""

    token: str = Field(max_length=128)
    password: str = Field(
        description=f"{MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters, as at sign-up."
    )

    @model_validator(mode="before")
    @classmethod
    def _checked(cls, data: Any) -> Any:
        if isinstance(data, dict):
            password = data.get("password")
            if isinstance(password, str) and not (
                MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS
            ):
                raise invalid_password()
        return data


class PasswordResetAccepted(WireModel):
    """``202`` of ``POST /api/password-reset``: the same whether or not the address has an
    account."""

    message: str


class AccountBody(WireModel):
    """An account as its holder sees it. Sign-up answers this shape for a new address and for
    one that already has an account alike (nothing is created then)."""

    email: str
    name: str | None
    email_verified: bool = Field(description="False until the verification mail is answered.")
    is_admin: bool
    created_at: Timestamp
    notify_pending: bool = Field(
        True,
        description="Whether photos waiting for approval in its rooms are mailed to it as a "
        "digest (verified address only; at most one per room per "
        "`IMAGESHARK_PENDING_DIGEST_MINUTES`).",
    )


class AccountChanges(WireModel):
    """``PATCH /api/me``: the account's preferences to change (absent: unchanged)."""

    notify_pending: bool | None = None


class SessionBody(WireModel):
    """One signed-in browser of the account."""

    id: int
    device: str = Field(description="From its User-Agent, e.g. `Firefox on Android`.")
    created_at: Timestamp = Field(description="When it signed in.")
    last_used_at: Timestamp = Field(
        description="Its last request, to the minute (updated at most once a minute)."
    )
    current: bool = Field(description="Whether it is the session of this request.")


class SessionList(WireModel):
    """``GET /api/me/sessions``: the account's live sessions, most recently used first."""

    sessions: list[SessionBody]


class HostedRoomBody(WireModel):
    """A room the account owns or co-hosts, with the counts its room list shows."""

    token: str
    code: str | None
    title: str
    role: HostRole
    created_at: Timestamp
    expires_at: Timestamp
    closed: bool
    photo_count: int = Field(description="Approved photos (what the room shows).")
    pending_count: int = Field(description="Photos waiting in the moderation queue.")
    participant_count: int = Field(description="Guests who joined.")
    last_activity_at: Timestamp = Field(
        description="The room's newest event (photo, setting change...), or its creation."
    )


class HostedRoomList(WireModel):
    """``GET /api/me/rooms``: owned and co-hosted rooms, newest first."""

    rooms: list[HostedRoomBody]
