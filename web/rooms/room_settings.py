"""Validation of the room settings a host may choose (``POST /api/rooms``, ``PATCH``).

Each field is checked on its own and refused with ``422 invalid_<field>`` and a message a host
can act on; the result maps column names to clean values.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from web.errors import ApiError

MODERATION_MODES = ("off", "approve")
WALL_MODES = ("spotlight", "grid")
WALL_QR_SIZES = ("off", "small", "medium", "large")
WALL_MIN_SECONDS = (2, 60)
"""Range of ``wall_min_seconds``: least seconds a new photo stays large on the wall."""
WALL_INTERMISSION_MINUTES = (1, 60)
"""Range of ``wall_intermission_minutes`` when on (0 is off): minutes between intermissions."""
WALL_INTERMISSION_SECONDS = (5, 120)
"""Range of ``wall_intermission_seconds``: how long the wall's intermission stays up."""
PASSCODE_CHARS = (4, 64)
MAX_QUOTA = 1_000_000
MAX_BYTES_QUOTA = 2**50
"""Largest room byte quota a host may set (1 PiB: any real disk is smaller)."""
MAX_TITLE_CHARS = 200
# Unicode categories refused in text: control characters (whitespace ones are folded before
# the check) and surrogates, which are only halves of a UTF-16 pair, never characters.
_UNSTORABLE = frozenset({"Cc", "Cs"})

SETTABLE_FIELDS = (
    "title",
    "uploads_open",
    "moderation",
    "passcode",
    "expires_at",
    "wall_mode",
    "wall_qr_size",
    "wall_captions",
    "wall_blanked",
    "wall_min_seconds",
    "wall_intermission_minutes",
    "wall_intermission_seconds",
    "max_uploads_per_guest",
    "max_images",
    "max_bytes",
    "require_join",
    "gallery_grace_days",
    "downscale_uploads",
    "keep_location",
    "wall_show_passcode",
)

# The longest read-only grace after expiry, in days.
MAX_GRACE_DAYS = 90


def clean_text(value: object, *, field: str, max_chars: int, required: bool) -> str | None:
    """Validate a short user-supplied text field and return it with whitespace folded.

    :param value: the raw JSON or form value.
    :param field: its name, for the error message.
    :param max_chars: longest accepted length, in characters (after folding).
    :param required: whether an empty or missing value is an error (else it becomes None).
    :raises ApiError: 422 ``invalid_<field>`` when not a string, too long, required but empty,
        or holding a control character other than whitespace (NUL, ESC, DEL...) or a lone
        surrogate (which no database can store as text, and no client can display).
    """
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ApiError(422, f"invalid_{field}", f"The {field} must be a string.")
    text = " ".join(value.split())  # newlines, tabs and other whitespace become one space
    if any(unicodedata.category(char) in _UNSTORABLE for char in text):
        raise ApiError(
            422,
            f"invalid_{field}",
            f"The {field} contains a control character or an invalid (surrogate) code point.",
        )
    if not text:
        if required:
            raise ApiError(422, f"invalid_{field}", f"The {field} must not be empty.")
        return None
    if len(text) > max_chars:
        raise ApiError(
            422, f"invalid_{field}", f"The {field} is longer than {max_chars} characters."
        )
    return text


def _boolean(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ApiError(422, f"invalid_{field}", f"'{field}' must be true or false.")
    return value


def _choice(field: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ApiError(422, f"invalid_{field}", f"'{field}' must be one of: {', '.join(choices)}.")
    assert isinstance(value, str)
    return value


def _quota(field: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_QUOTA:
        raise ApiError(
            422, f"invalid_{field}", f"'{field}' must be an integer from 1 to {MAX_QUOTA}, or null."
        )
    return value


def _grace_days(value: object) -> int | None:
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_GRACE_DAYS:
        raise ApiError(
            422,
            "invalid_gallery_grace_days",
            f"'gallery_grace_days' must be a number of days from 1 to {MAX_GRACE_DAYS}, "
            "or 0/null for off.",
        )
    return value


def _byte_quota(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_BYTES_QUOTA:
        raise ApiError(
            422,
            "invalid_max_bytes",
            f"'max_bytes' must be a number of bytes from 1 to {MAX_BYTES_QUOTA}, or null.",
        )
    return value


def _wall_min_seconds(value: object) -> int:
    low, high = WALL_MIN_SECONDS
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(
            422,
            "invalid_wall_min_seconds",
            f"'wall_min_seconds' must be a whole number of seconds from {low} to {high}.",
        )
    return value


def _wall_intermission_minutes(value: object) -> int:
    low, high = WALL_INTERMISSION_MINUTES
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (value == 0 or low <= value <= high)
    ):
        raise ApiError(
            422,
            "invalid_wall_intermission_minutes",
            f"'wall_intermission_minutes' must be a whole number of minutes from {low} to {high} "
            "(how often the wall shows its full-screen QR code), or 0 for off.",
        )
    return value


def _wall_intermission_seconds(value: object) -> int:
    low, high = WALL_INTERMISSION_SECONDS
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(
            422,
            "invalid_wall_intermission_seconds",
            f"'wall_intermission_seconds' must be a whole number of seconds from {low} to {high} "
            "(how long the wall's full-screen QR code stays up).",
        )
    return value


def _passcode(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(422, "invalid_passcode", "The passcode must be a string.")
    passcode = value.strip()
    low, high = PASSCODE_CHARS
    if not low <= len(passcode) <= high or any(not char.isprintable() for char in passcode):
        raise ApiError(
            422,
            "invalid_passcode",
            f"The passcode must be {low} to {high} printable characters.",
        )
    return passcode


def _expiry(value: object, now: datetime, longest: timedelta) -> datetime:
    if not isinstance(value, str):
        raise ApiError(422, "invalid_expires_at", "'expires_at' must be an ISO 8601 time.")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(422, "invalid_expires_at", "'expires_at' is not an ISO 8601 time.") from None
    if moment.tzinfo is None:
        raise ApiError(
            422, "invalid_expires_at", "'expires_at' needs a time zone (e.g. 'Z' for UTC)."
        )
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before the first representable UTC
        raise ApiError(422, "invalid_expires_at", "'expires_at' is out of range.") from None
    if moment <= now:
        raise ApiError(422, "invalid_expires_at", "'expires_at' must be in the future.")
    if moment > now + longest:
        hours = longest.total_seconds() / 3600
        raise ApiError(
            422, "invalid_expires_at", f"'expires_at' may be at most {hours:g} hours from now."
        )
    return moment


def validate_room_settings(
    body: Mapping[str, Any], *, now: datetime, longest_lifetime: timedelta
) -> dict[str, Any]:
    """Check the settable fields present in ``body``; return ``{column: clean value}``.

    :param body: the request's JSON object; only :data:`SETTABLE_FIELDS` are accepted.
    :param now: the current UTC time (expiry must be after it).
    :param longest_lifetime: how far ahead ``expires_at`` may be.
    :raises ApiError: 422 ``unknown_field`` for a field not in :data:`SETTABLE_FIELDS`, or
        ``invalid_<field>`` for a bad value.
    """
    unknown = sorted(set(body) - set(SETTABLE_FIELDS))
    if unknown:
        raise ApiError(422, "unknown_field", f"Unknown room setting(s): {', '.join(unknown)}.")
    checks: dict[str, Callable[[object], Any]] = {
        "title": lambda v: clean_text(v, field="title", max_chars=MAX_TITLE_CHARS, required=True),
        "uploads_open": lambda v: _boolean("uploads_open", v),
        "moderation": lambda v: _choice("moderation", v, MODERATION_MODES),
        "passcode": _passcode,
        "expires_at": lambda v: _expiry(v, now, longest_lifetime),
        "wall_mode": lambda v: _choice("wall_mode", v, WALL_MODES),
        "wall_qr_size": lambda v: _choice("wall_qr_size", v, WALL_QR_SIZES),
        "wall_captions": lambda v: _boolean("wall_captions", v),
        "wall_blanked": lambda v: _boolean("wall_blanked", v),
        "wall_min_seconds": _wall_min_seconds,
        "wall_intermission_minutes": _wall_intermission_minutes,
        "wall_intermission_seconds": _wall_intermission_seconds,
        "max_uploads_per_guest": lambda v: _quota("max_uploads_per_guest", v),
        "max_images": lambda v: _quota("max_images", v),
        "max_bytes": _byte_quota,
        "require_join": lambda v: _boolean("require_join", v),
        "gallery_grace_days": _grace_days,
        "downscale_uploads": lambda v: _boolean("downscale_uploads", v),
        "keep_location": lambda v: _boolean("keep_location", v),
        "wall_show_passcode": lambda v: _boolean("wall_show_passcode", v),
    }
    return {field: checks[field](value) for field, value in body.items()}
