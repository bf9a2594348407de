"""The printed table card (``/r/{token}/card``): what it tells guests to type, and how large
its QR code is on paper.

Four A6 cards (105 x 148 mm) fill one A4 sheet. Each card's QR code is :data:`QR_WIDTH_MM`
wide, quiet zone included, so its module size follows from the code's module count (2.12 mm
for the version 2 code of a short join URL, 33 modules with the quiet zone). A QR code reads
from about ten times its width (https://www.qrcodecreator.io/resources/size-guide): about half
a metre for that code, enough across a table.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from web.rooms.qr import QUIET_ZONE_MODULES

QR_WIDTH_MM = 70
"""Printed width of each card's QR code in millimetres, the four-module quiet zone included
(static/css/table-card.css draws it at this size)."""

SCAN_DISTANCE_PER_WIDTH = 10
"""A QR code scans from about this many times its symbol's width (the 10:1 rule)."""


def grouped_code(code: str) -> str:
    """``code`` in groups of four, as printed for people to copy: ``"7K3QX9AB"`` becomes
    ``"7K3Q X9AB"`` (the code field and ``/j/{code}`` ignore the space)."""
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))


def typed_address(url: str) -> str:
    """``url`` as people type it into a browser's address bar: without the scheme and
    ``//`` (``http://192.168.1.20:8000/j/7K3QX9AB`` → ``192.168.1.20:8000/j/7K3QX9AB``).
    Browsers complete a bare address to http or https themselves."""
    parts = urlsplit(url)
    return url[len(parts.scheme) + 3 :] if parts.scheme and parts.netloc else url


def table_card_context(view: dict[str, Any]) -> dict[str, Any]:
    """What ``table_card.html`` needs besides the room's public ``view``
    (:func:`web.rooms.views.room_view`).

    :returns: ``{"join_address"}`` (the join URL to type, :func:`typed_address`),
        ``"site_address"`` (the service's base address to type, where the landing page asks
        for the code), ``"grouped_code"`` (None for a room without a code), ``"qr_width_mm"``,
        ``"module_mm"`` (printed size of one QR module, mm, float), ``"scan_distance_m"``
        (metres, by the 10:1 rule on the symbol without its quiet zone).
    """
    join_address = typed_address(view["join_url"])
    code = view["code"]
    site_address = join_address.removesuffix(f"/j/{code}") if code else None
    modules = int(view["qr_modules"])
    module_mm = QR_WIDTH_MM / modules
    symbol_mm = module_mm * (modules - 2 * QUIET_ZONE_MODULES)
    return {
        "join_address": join_address,
        "site_address": site_address,
        "grouped_code": grouped_code(code) if code else None,
        "qr_width_mm": QR_WIDTH_MM,
        "module_mm": module_mm,
        "scan_distance_m": symbol_mm * SCAN_DISTANCE_PER_WIDTH / 1000,
    }
