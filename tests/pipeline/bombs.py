"""Decompression bombs for CPU tests: tiny PNG files that decode to huge, costly images."""

from __future__ import annotations

import struct
import zlib

_BLOCK_BYTES = 1 << 20
_ADLER_MOD = 65521
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _zeros_zlib(length: int) -> bytes:
    """A zlib stream of ``length`` zero bytes, made without compressing them all.

    A full flush resets deflate's state, so each further MiB of zeros compresses to the same
    bytes; the stream is those bytes repeated, a final block, and the Adler-32 of the zeros.
    """
    blocks, rest = divmod(length, _BLOCK_BYTES)
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw.compress(bytes(_BLOCK_BYTES))
    raw.flush(zlib.Z_FULL_FLUSH)
    raw.compress(bytes(_BLOCK_BYTES))
    repeated = raw.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = final.compress(bytes(rest)) + final.flush()
    adler = ((length % _ADLER_MOD) << 16) | 1  # a stays 1 over zeros; b adds 1 per byte
    return b"\x78\xda" + repeated * blocks + tail + struct.pack(">I", adler)


def png_bomb(
    width: int, height: int, *, bit_depth: int = 16, color_type: int = 6, tag: str = ""
) -> bytes:
    """A valid all-black PNG of ``width`` x ``height`` pixels (16-bit RGBA by default).

    8000 x 8000 16-bit RGBA is 498 KB on disk and 512 MB of samples to inflate.

    :param bit_depth: bits per sample, 8 or 16.
    :param color_type: PNG colour type: 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA.
    :param tag: text stored in a tEXt chunk, to make otherwise equal bombs distinct files.
    """
    row = 1 + width * _CHANNELS[color_type] * bit_depth // 8  # a filter byte, then samples
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    text = _chunk(b"tEXt", b"Comment\x00" + tag.encode()) if tag else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + text
        + _chunk(b"IDAT", _zeros_zlib(row * height))
        + _chunk(b"IEND", b"")
    )
