"""QR codes of join URLs, as PNG and SVG.

Error correction level M (15% of codewords recoverable) and the standard four-module quiet zone
(ISO/IEC 18004:2015 §9.1) keep a projected code readable from across a room; the PNG is drawn at
16 pixels per module so it stays sharp when scaled up on a projector.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from functools import lru_cache
from urllib.parse import urlsplit

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M

_SHORT_PATH = re.compile(r"/[jJ]/[0-9A-Za-z]{8}")

PNG_PIXELS_PER_MODULE = 16
QUIET_ZONE_MODULES = 4


def qr_payload(url: str) -> str:
    """``url`` in the form with the smallest QR code: upper-cased whole.

    Scheme and host are case-insensitive (RFC 3986 §3.1, §3.2.2) and so is the short join
    path ``/J/{CODE}``; in upper case every character is in the QR alphanumeric set
    (0-9 A-Z space $ % * + - . / :), 5.5 bits a character instead of 8 in byte mode: a smaller
    code, so larger modules at the same size
    (docs/decisions/0015-upper-case-short-join-urls-in-qr-codes.md). URLs with
    lower-case-sensitive parts (``/r/{token}``) are returned unchanged, and so are URLs under a
    base path (it may be case-sensitive).
    """
    parts = urlsplit(url)
    if _SHORT_PATH.fullmatch(parts.path) and not parts.query and not parts.fragment:
        return url.upper()
    return url


def _code(data: str) -> qrcode.QRCode:
    code = qrcode.QRCode(
        error_correction=ERROR_CORRECT_M,
        box_size=PNG_PIXELS_PER_MODULE,
        border=QUIET_ZONE_MODULES,
    )
    code.add_data(data)
    code.make(fit=True)
    return code


QR_CACHE_SIZE = 256
"""Join URLs whose codes each :class:`QrCodes` keeps (a few bytes to a few KB each)."""


class QrCodes:
    """The QR codes of join URLs, each drawn once and kept in this object's bounded caches
    (one object per app, built by ``create_app``). Thread-safe: call from worker threads.

    :param cache_size: URLs kept per kind (PNG, SVG, module count), least recently used out.
    """

    def __init__(self, cache_size: int = QR_CACHE_SIZE) -> None:
        self._png: Callable[[str], bytes] = lru_cache(maxsize=cache_size)(_png)
        self._svg: Callable[[str], bytes] = lru_cache(maxsize=cache_size)(_svg)
        self._modules: Callable[[str], int] = lru_cache(maxsize=cache_size)(_modules)

    def png(self, data: str) -> bytes:
        """A black-on-white PNG QR code of ``data`` (blocking: a few ms; call from a thread)."""
        return self._png(data)

    def svg(self, data: str) -> bytes:
        """A scalable SVG QR code of ``data`` as one path on a white background (blocking)."""
        return self._svg(data)

    def modules(self, data: str) -> int:
        """The width of the QR code of ``data`` in modules, quiet zone included (the symbol's
        ``17 + 4 * version`` plus four modules on each side; 41 for a version 4 code).

        What the wall divides its QR size by to draw every module in whole device pixels.
        Blocking but cheap (about a millisecond to encode, then cached per URL).
        """
        return self._modules(data)


def _png(data: str) -> bytes:
    buffer = io.BytesIO()
    _code(data).make_image(fill_color="black", back_color="white").save(buffer, format="PNG")
    return buffer.getvalue()


def _modules(data: str) -> int:
    return int(_code(data).modules_count) + 2 * QUIET_ZONE_MODULES


def _svg(data: str) -> bytes:
    image = _code(data).make_image(image_factory=qrcode.image.svg.SvgPathFillImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()
