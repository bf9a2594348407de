"""Secrets handed to clients: room tokens, host keys and participant keys.

All are random strings from :mod:`secrets` (the OS CSPRNG). Tokens are public within a room
(they are in the join URL); keys are bearer secrets and only their SHA-256 digests are stored.
A plain digest is enough because the keys carry 256 random bits: there is nothing to guess
that a slow password hash would protect (OWASP Password Storage Cheat Sheet applies to
low-entropy secrets).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

ROOM_TOKEN_BYTES = 18  # 144 bits, over the contract's minimum of 128.
KEY_BYTES = 32  # 256 bits.
_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{22,64}")


def new_room_token() -> str:
    """A fresh URL-safe room token (24 characters, 144 random bits)."""
    return secrets.token_urlsafe(ROOM_TOKEN_BYTES)


# Crockford base32 without I, L, O and U: no letter is read as a digit or as another letter.
ROOM_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ROOM_CODE_LENGTH = 8  # 32**8 = 2**40 codes.
_CODE_PATTERN = re.compile(f"[{ROOM_CODE_ALPHABET}]{{{ROOM_CODE_LENGTH}}}")


def new_room_code() -> str:
    """A fresh short room code: 8 characters of :data:`ROOM_CODE_ALPHABET` (40 random bits),
    for the short join URL ``/j/{code}``. Not a secret: it is printed beside the QR code."""
    return "".join(secrets.choice(ROOM_CODE_ALPHABET) for _ in range(ROOM_CODE_LENGTH))


def normalize_room_code(text: str) -> str | None:
    """``text`` as a stored room code (upper-cased), or None when it cannot be one."""
    code = text.strip().upper()
    return code if _CODE_PATTERN.fullmatch(code) else None


def new_secret_key() -> str:
    """A fresh URL-safe bearer key (43 characters, 256 random bits)."""
    return secrets.token_urlsafe(KEY_BYTES)


def digest(key: str) -> str:
    """The hex SHA-256 digest under which a bearer key is stored (64 characters)."""
    return hashlib.sha256(key.encode()).hexdigest()


def matches(key: str, stored_digest: str) -> bool:
    """Whether ``key`` hashes to ``stored_digest``, compared in constant time."""
    return hmac.compare_digest(digest(key), stored_digest)


def is_well_formed_token(token: str) -> bool:
    """Whether ``token`` could be a room token (cheap check before any database query)."""
    return _TOKEN_PATTERN.fullmatch(token) is not None
