"""QR codes of join URLs, as PNG and SVG.

Error correction level M (15% of codewords recoverable) and the standard four-module quiet zone
(ISO/IEC 18004:2015 §9.1) keep a projected code readable from across a room; the PNG is drawn at
16 pixels per module so it stays sharp when scaled up on a projector.
"""

from __future__ import annotations

import io
from functools import lru_cache

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M

PNG_PIXELS_PER_MODULE = 16
QUIET_ZONE_MODULES = 4


def _code(data: str) -> qrcode.QRCode:
    code = qrcode.QRCode(
        error_correction=ERROR_CORRECT_M,
        box_size=PNG_PIXELS_PER_MODULE,
        border=QUIET_ZONE_MODULES,
    )
    code.add_data(data)
    code.make(fit=True)
    return code


@lru_cache(maxsize=256)
def qr_png(data: str) -> bytes:
    """A black-on-white PNG QR code of ``data`` (blocking: a few ms; call from a thread)."""
    buffer = io.BytesIO()
    _code(data).make_image(fill_color="black", back_color="white").save(buffer, format="PNG")
    return buffer.getvalue()


@lru_cache(maxsize=256)
def qr_modules(data: str) -> int:
    """The width of the QR code of ``data`` in modules, quiet zone included (the symbol's
    ``17 + 4 * version`` plus four modules on each side; 41 for a version 4 code).

    What the wall divides its QR size by to draw every module in whole device pixels. Blocking
    but cheap (about a millisecond to encode, then cached per URL).
    """
    return int(_code(data).modules_count) + 2 * QUIET_ZONE_MODULES


@lru_cache(maxsize=256)
def qr_svg(data: str) -> bytes:
    """A scalable SVG QR code of ``data`` as one path on a white background (blocking)."""
    image = _code(data).make_image(image_factory=qrcode.image.svg.SvgPathFillImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()
