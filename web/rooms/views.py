"""JSON shapes of rooms, and the public URLs built for them."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from web.errors import ApiError
from web.rooms.qr import qr_modules
from web.rooms.repository import Room
from web.rooms.service import room_settings_view
from web.settings import Settings

# RFC 3986 host (a DNS name of at most 253 characters, an IPv4 or a bracketed IPv6 address)
# and optional port: what may go into a join URL and its QR code.
_HOST_HEADER = re.compile(r"(?:[A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")


def public_base_url(request: Request, settings: Settings) -> str:
    """The base URL guests use, without a trailing slash.

    ``IMAGESHARK_PUBLIC_BASE_URL`` when set (needed behind proxies that rewrite the host), else
    the scheme and host of ``request`` as the client sent them.

    :raises ApiError: 400 ``invalid_host`` when the URL would come from a ``Host`` header that
        is not a host name or address with an optional port (too long, with a path, a user
        part, spaces...): it would end up in join URLs and QR codes.
    """
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    host = request.headers.get("host")
    if host is not None and _HOST_HEADER.fullmatch(host) is None:
        raise ApiError(
            400, "invalid_host", "The Host header is not a host name or address with a port."
        )
    return str(request.base_url).rstrip("/")


def join_url(base_url: str, room: Room) -> str:
    """The absolute participant-page URL of ``room``: what the QR code encodes."""
    return f"{base_url}/r/{room.token}"


def room_view(room: Room, base_url: str, image_count: int) -> dict[str, Any]:
    """The room's public JSON view (never includes the host key or the passcode)."""
    join = join_url(base_url, room)
    return {
        "token": room.token,
        "created_at": room.created_at.isoformat(),
        **room_settings_view(room),
        "join_url": join,
        "wall_url": f"{join}/wall",
        "host_url": f"{join}/host",
        "qr_png_url": f"/api/rooms/{room.token}/qr.png",
        "qr_svg_url": f"/api/rooms/{room.token}/qr.svg",
        "qr_modules": qr_modules(join),
        "image_count": image_count,
        "last_seq": room.last_seq,
    }


def host_room_view(
    room: Room, base_url: str, image_count: int, pending_count: int
) -> dict[str, Any]:
    """The host's view: the public view plus the passcode (in clear, for the host to tell
    guests), the number of images waiting for approval and the original bytes the room holds
    (what ``max_bytes`` is checked against)."""
    return {
        **room_view(room, base_url, image_count),
        "passcode": room.passcode,
        "pending_count": pending_count,
        "stored_bytes": room.stored_bytes,
    }
