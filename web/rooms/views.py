"""JSON shapes of rooms, and the public URLs built for them."""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Any
from urllib.parse import urlsplit

import ifaddr
from starlette.requests import Request

from web.errors import ApiError
from web.rooms.qr import QrCodes, qr_payload
from web.rooms.repository import Room
from web.rooms.service import room_settings_view
from web.settings import Settings

# RFC 3986 host (a DNS name of at most 253 characters, an IPv4 or a bracketed IPv6 address)
# and optional port: what may go into a join URL and its QR code.
_HOST_HEADER = re.compile(r"(?:[A-Za-z0-9._-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")


WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
"""Bind hosts meaning every interface (``IMAGESHARK_HOST``)."""
LAN_ADDRESS_CACHE_SECONDS = 10.0


class LanAddress:
    """The machine's LAN address, read again at most every ``cache_seconds`` (one object per
    app, built by ``create_app``; the CLI makes its own).

    :param cache_seconds: how long a reading is reused, seconds of ``time.monotonic``.
    """

    def __init__(self, cache_seconds: float = LAN_ADDRESS_CACHE_SECONDS) -> None:
        self.cache_seconds = cache_seconds
        self._read: tuple[float, str | None] = (-cache_seconds, None)

    def get(self) -> str | None:
        """The first private, non-loopback, non-link-local IPv4 address assigned to one of the
        machine's interfaces (read with ``ifaddr``, no traffic sent), or None."""
        now = time.monotonic()
        if now - self._read[0] < self.cache_seconds:
            return self._read[1]
        found = _read_lan_address()
        self._read = (now, found)
        return found


def _read_lan_address() -> str | None:
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if not isinstance(ip.ip, str):  # IPv6 entries are tuples
                continue
            address = ipaddress.IPv4Address(ip.ip)
            if address.is_private and not address.is_loopback and not address.is_link_local:
                return str(address)
    return None


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or address, IPv6 with or without brackets) is this machine
    only: ``localhost`` (and ``*.localhost``), 127.0.0.0/8 or ::1."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def join_url_warning(url: str) -> str | None:
    """None when phones can plausibly open ``url``; else a sentence telling the host what to do
    (its host is loopback, ``localhost`` or a single-label name phones cannot resolve)."""
    host = urlsplit(url).hostname or ""
    if is_loopback_host(host):
        return (
            f"Phones cannot open {host}: set IMAGESHARK_PUBLIC_BASE_URL to an address guests "
            "reach, or run the server on the venue's network (IMAGESHARK_HOST=0.0.0.0)."
        )
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if "." not in host:
        return (
            f"Phones may not resolve the name {host!r}: set IMAGESHARK_PUBLIC_BASE_URL to a full "
            "domain name or an IP address guests reach."
        )
    return None


def public_base_url(request: Request, settings: Settings, lan: LanAddress) -> str:
    """The base URL guests use, without a trailing slash.

    ``IMAGESHARK_PUBLIC_BASE_URL`` when set (needed behind proxies that rewrite the host);
    else, when the request came to a loopback host and the service is bound to every interface
    (``IMAGESHARK_HOST`` ``0.0.0.0``), the machine's LAN address (``lan``) with the
    request's scheme and port; else the scheme and host of ``request`` as the client sent them.

    :raises ApiError: 400 ``invalid_host`` when the URL would come from a ``Host`` header that
        is not a host name or address with an optional port (too long, with a path, a user
        part, spaces...): it would end up in join URLs and QR codes.
    """
    base = request_base_url(request, settings)
    if settings.public_base_url:
        return base
    parts = urlsplit(base)
    if settings.host in WILDCARD_HOSTS and is_loopback_host(parts.hostname or ""):
        address = lan.get()
        if address is not None:
            port = f":{parts.port}" if parts.port is not None else ""
            return f"{parts.scheme}://{address}{port}{parts.path}"
    return base


def request_base_url(request: Request, settings: Settings) -> str:
    """The base URL the client of ``request`` reached the service at, without a trailing
    slash: ``IMAGESHARK_PUBLIC_BASE_URL`` when set, else the request's scheme and host. URLs
    the page itself calls (a direct upload's ``PUT``) use it rather than
    :func:`public_base_url`: a page opened on ``localhost`` may not call the LAN address (its
    Content-Security-Policy allows its own origin).

    :raises ApiError: 400 ``invalid_host``, as :func:`public_base_url`.
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
    """The absolute short join URL of ``room``, ``{base}/j/{CODE}``, what guests type and the
    QR code encodes (``{base}/r/{token}`` for a room without a code). ``/r/{token}`` keeps
    working everywhere."""
    if room.code:
        return f"{base_url}/j/{room.code}"
    return token_url(base_url, room)


def token_url(base_url: str, room: Room) -> str:
    """The absolute participant-page URL of ``room`` by its token, ``{base}/r/{token}``."""
    return f"{base_url}/r/{room.token}"


def room_view(room: Room, base_url: str, image_count: int, qr: QrCodes) -> dict[str, Any]:
    """The room's public JSON view (never includes the host key or the passcode); ``qr``
    measures its join URL's code (``qr_modules``)."""
    join = token_url(base_url, room)
    short = join_url(base_url, room)
    warning = join_url_warning(short)
    return {
        "token": room.token,
        "code": room.code,
        "created_at": room.created_at.isoformat(),
        **room_settings_view(room),
        "join_url": short,
        "join_url_reachable": warning is None,
        "join_url_warning": warning,
        "wall_url": f"{join}/wall",
        "host_url": f"{join}/host",
        "card_url": f"{join}/card",
        "qr_png_url": f"/api/rooms/{room.token}/qr.png",
        "qr_svg_url": f"/api/rooms/{room.token}/qr.svg",
        "qr_modules": qr.modules(qr_payload(short)),
        "image_count": image_count,
        "last_seq": room.last_seq,
    }


def host_room_view(
    room: Room, base_url: str, image_count: int, pending_count: int, qr: QrCodes
) -> dict[str, Any]:
    """The host's view: the public view plus the passcode (in clear, for the host to tell
    guests), the number of images waiting for approval and the original bytes the room holds
    (what ``max_bytes`` is checked against)."""
    return {
        **room_view(room, base_url, image_count, qr),
        "passcode": room.passcode,
        "pending_count": pending_count,
        "stored_bytes": room.stored_bytes,
    }
