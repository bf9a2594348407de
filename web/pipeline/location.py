"""Removal of location (GPS) metadata from an original, without touching its pixels.

Why a rewriter of our own: Pillow re-encodes when it saves (a JPEG would lose quality and
size), piexif is unmaintained and JPEG-only, and exiftool is a Perl program, not a library.
The rewrite here is *length-preserving*: the GPS IFD of the EXIF block is emptied (entry count
0, its entries and out-of-line values overwritten with zeros) and XMP ``GPS*`` properties are
overwritten with spaces (valid XML whitespace), so no offset in the container moves. That makes
one method serve every container the pipeline accepts: JPEG (APP1), PNG (``eXIf``, XMP in an
uncompressed ``iTXt``; the chunks' CRCs are recomputed), WebP (``EXIF``/``XMP `` chunks) and
HEIF/AVIF (the Exif and XMP items, whose ``iloc`` offsets stay valid). Capture time
(``DateTimeOriginal`` and the rest of the Exif IFD), orientation and colour profile are kept.

Not covered: XMP stored compressed (a ``zTXt`` or compressed ``iTXt`` PNG chunk), where the
GPS text is not visible in the file; such PNGs are rare (phones write JPEG/HEIC).
"""

from __future__ import annotations

import io
import re
import struct
import zlib

from PIL import Image

GPS_IFD_TAG = 0x8825
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_XMP_PACKET = re.compile(rb"<x:xmpmeta\b.*?</x:xmpmeta>", re.DOTALL)
_XMP_GPS_ATTRIBUTE = re.compile(rb"""\s[\w.-]+:GPS\w*\s*=\s*(?:"[^"]*"|'[^']*')""")
_XMP_GPS_ELEMENT = re.compile(rb"<([\w.-]+:GPS\w*)\b[^>]*?(?:/>|>.*?</\1\s*>)", re.DOTALL)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def strip_location(data: bytes) -> bytes:
    """Return ``data`` (an image file) with every GPS tag of its EXIF and XMP blanked.

    :param data: the original file's bytes (any accepted type).
    :returns: bytes of the same length; ``data`` itself when it holds no location.
    :raises: nothing for a damaged or unusual file: whatever cannot be parsed is left as is.
    """
    patched = bytearray(data)
    _blank_exif_gps(patched)
    for packet in _XMP_PACKET.finditer(data):
        _blank_xmp_gps(patched, packet.start(), packet.end())
    if patched == data:
        return data
    if data.startswith(_PNG_SIGNATURE):
        _fix_png_crcs(patched)
    return bytes(patched)


def _blank_exif_gps(buffer: bytearray) -> None:
    try:
        with Image.open(io.BytesIO(bytes(buffer))) as image:
            exif = image.info.get("exif")
    except Exception:  # not decodable here: nothing known to strip
        return
    if not isinstance(exif, bytes | bytearray):
        return
    tiff = bytes(exif)
    marker = tiff.find(b"Exif\x00\x00")
    if marker != -1 and marker < 16:
        tiff = tiff[marker + 6 :]
    if len(tiff) < 8 or tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        return
    # Locate the block in the file: its first bytes, long enough to be unique.
    base = buffer.find(tiff[: min(len(tiff), 64)])
    if base == -1:
        return
    _empty_gps_ifd(buffer, base)


def _empty_gps_ifd(buffer: bytearray, base: int) -> None:
    order = "<" if buffer[base : base + 2] == b"II" else ">"
    end = len(buffer)

    def read(fmt: str, at: int) -> int:
        size = struct.calcsize(fmt)
        if at < 0 or at + size > end:
            raise ValueError("outside the file")
        value: int = struct.unpack_from(order + fmt, buffer, at)[0]
        return value

    try:
        ifd0 = base + read("I", base + 4)
        count = read("H", ifd0)
        gps = None
        for index in range(count):
            entry = ifd0 + 2 + 12 * index
            if read("H", entry) == GPS_IFD_TAG:
                gps = base + read("I", entry + 8)
                break
        if gps is None:
            return
        entries = read("H", gps)
        if gps + 2 + 12 * entries > end:
            return
        for index in range(entries):
            entry = gps + 2 + 12 * index
            kind, items = read("H", entry + 2), read("I", entry + 4)
            size = _TYPE_SIZES.get(kind, 1) * items
            if size > 4:
                value = base + read("I", entry + 8)
                if value + size <= end and value > gps:
                    buffer[value : value + size] = bytes(size)
        # Entry count 0; the entries, then the next-IFD pointer that follows 0 entries, zeroed.
        buffer[gps : gps + 2 + 12 * entries] = bytes(2 + 12 * entries)
    except (ValueError, struct.error):
        return


def _blank_xmp_gps(buffer: bytearray, start: int, stop: int) -> None:
    packet = bytes(buffer[start:stop])
    for pattern in (_XMP_GPS_ELEMENT, _XMP_GPS_ATTRIBUTE):
        for match in pattern.finditer(packet):
            length = match.end() - match.start()
            buffer[start + match.start() : start + match.end()] = b" " * length
        packet = bytes(buffer[start:stop])


def _fix_png_crcs(buffer: bytearray) -> None:
    at = len(_PNG_SIGNATURE)
    while at + 12 <= len(buffer):
        length = struct.unpack_from(">I", buffer, at)[0]
        kind = bytes(buffer[at + 4 : at + 8])
        crc_at = at + 8 + length
        if crc_at + 4 > len(buffer):
            return
        if kind in (b"eXIf", b"iTXt"):
            crc = zlib.crc32(buffer[at + 4 : crc_at]) & 0xFFFFFFFF
            struct.pack_into(">I", buffer, crc_at, crc)
        if kind == b"IEND":
            return
        at = crc_at + 4
