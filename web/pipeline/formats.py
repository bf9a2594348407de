"""What an uploaded file is, decided from its bytes, and the errors for files we refuse.

The type is read from the file's leading bytes (its magic number) before Pillow is asked
anything, and Pillow is then only allowed the one plugin that matches; the file name and the
declared Content-Type are never consulted. Anything that is not one of the accepted photo formats
is refused with a message naming what it looks like, and so are polyglots: files that start like
a photo but are also a ZIP archive or a PDF to the tools that read those.

Magic numbers: JPEG (ISO/IEC 10918-1: SOI followed by a marker), PNG (PNG specification 5.2),
GIF (GIF89a specification 17), WebP (Google's WebP container specification: a RIFF file of form
type WEBP), HEIF and AVIF (the ISO/IEC 14496-12 ``ftyp`` box, with the brands of ISO/IEC 23008-12,
e.g. mif1 and heic, and of the AVIF specification, avif and avis); refused types from each
format's specification and the patterns of the WHATWG MIME Sniffing Standard.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from PIL import features

from web.errors import ApiError


@dataclass(frozen=True)
class ImageType:
    """An accepted image type, as sniffed.

    :param format: our name, ``"jpeg" | "png" | "webp" | "gif" | "heif" | "avif"``.
    :param mime_type: of the file as uploaded, e.g. ``"image/heic"``.
    :param pillow_format: the Pillow plugin allowed to open it, e.g. ``"JPEG"``.
    """

    format: str
    mime_type: str
    pillow_format: str


def accepted_types() -> str:
    """The accepted types as shown to people, e.g. ``"JPEG, PNG, WebP, GIF, HEIC/HEIF, AVIF"``.

    AVIF is listed only when this Pillow build can decode it.
    """
    names = ["JPEG", "PNG", "WebP", "GIF", "HEIC/HEIF"]
    if features.check("avif"):
        names.append("AVIF")
    return ", ".join(names)


class UnsupportedImageType(ApiError):
    """415: the bytes are not a photo in an accepted format.

    :param detected: what the bytes look like, as a noun phrase (``"a PDF document"``), or
        ``None`` if unrecognised.
    """

    def __init__(self, detected: str | None = None) -> None:
        self.detected = detected
        what = f"This is {detected}, not a photo." if detected else "This is not a photo we read."
        super().__init__(
            415, "unsupported_media_type", f"{what} Accepted types: {accepted_types()}."
        )

    def __reduce__(self) -> tuple[type[UnsupportedImageType], tuple[str | None]]:
        # Exceptions unpickle by calling cls(*self.args); args here is the message, not ours.
        return (type(self), (self.detected,))


class CorruptImage(ApiError):
    """422: the file has an accepted type but is truncated, damaged or cannot be decoded.

    :param kind: the format name for the message (``"JPEG"``), or ``None``.
    """

    def __init__(self, kind: str | None = None) -> None:
        self.kind = kind
        what = f"This {kind} file" if kind else "This file"
        super().__init__(
            422,
            "corrupt_image",
            f"{what} is damaged or incomplete and could not be decoded; try sending it again.",
        )

    def __reduce__(self) -> tuple[type[CorruptImage], tuple[str | None]]:
        return (type(self), (self.kind,))


class ImageTooLarge(ApiError):
    """413: the image has more pixels than allowed (a decompression-bomb guard).

    :param pixels: width * height of the image, pixels; 0 if unknown (Pillow refused it first).
    :param limit: the allowed maximum, pixels.
    """

    def __init__(self, pixels: int, limit: int) -> None:
        self.pixels = pixels
        self.limit = limit
        has = f"{pixels:,} pixels" if pixels else "too many pixels"
        super().__init__(
            413,
            "image_too_large",
            f"This image has {has}; the limit is {limit:,} pixels.",
        )

    def __reduce__(self) -> tuple[type[ImageTooLarge], tuple[int, int]]:
        return (type(self), (self.pixels, self.limit))


class ImageTooCostlyToDecode(ApiError):
    """413: decoding the image would take more memory than allowed (a decompression-bomb guard
    that counts the bit depth and channels as well as the pixels).

    :param width: of the image as it would be decoded, pixels.
    :param height: of the image as it would be decoded, pixels.
    :param bits: bits per channel as stored (8, 10, 12, 16).
    :param channels: channels per pixel (1 grey, 2 grey and alpha, 3 colour, 4 with alpha).
    :param decode_bytes: memory the decoder would fill, bytes.
    :param limit: the allowed maximum, bytes.
    """

    def __init__(
        self, width: int, height: int, bits: int, channels: int, decode_bytes: int, limit: int
    ) -> None:
        self.details = (width, height, bits, channels, decode_bytes, limit)
        super().__init__(
            413,
            "image_too_large",
            f"This image is {width:,} x {height:,} pixels with {channels} channel"
            f"{'s' if channels != 1 else ''} of {bits} bits, {decode_bytes / 2**20:,.0f} MiB to "
            f"decode; the limit is {limit / 2**20:,.0f} MiB (for example 100 megapixels of "
            "8-bit colour).",
        )

    def __reduce__(self) -> tuple[type[ImageTooCostlyToDecode], tuple[int, ...]]:
        return (type(self), self.details)


class ImageTooCostly(ApiError):
    """422: rendering the image took longer than allowed, so it was stopped.

    :param seconds: the time limit that was reached, seconds.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(
            422,
            "image_too_costly",
            f"This image took more than {seconds:g} seconds to process and was stopped; "
            "send a smaller or simpler version of it.",
        )

    def __reduce__(self) -> tuple[type[ImageTooCostly], tuple[float]]:
        return (type(self), (self.seconds,))


def png_bit_depth(data: bytes) -> int:
    """Bits per sample of a PNG, from its IHDR chunk (PNG specification 11.2.2); 8 if absent.

    :param data: a file that :func:`sniff` found to be a PNG.
    :returns: 1, 2, 4, 8 or 16 for a well-formed file.
    """
    if len(data) < 25 or data[12:16] != b"IHDR":
        return 8
    return data[24]


def check_pixels(width: int, height: int, limit: int) -> None:
    """Refuse an image of ``width`` x ``height`` pixels if it exceeds ``limit`` pixels.

    :raises ImageTooLarge: if ``width * height > limit``.
    """
    if width * height > limit:
        raise ImageTooLarge(width * height, limit)


_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis"}
_HEIC_SEQUENCE_BRANDS = {b"hevc", b"hevx", b"hevm", b"hevs"}
_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"mif1", b"mif2", b"msf1"}

# Recognised but refused, checked in order against the start of the file.
_REFUSED_PREFIXES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"),
    (b"%!PS", "a PostScript document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\xfd7zXZ\x00", "an XZ archive"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image or camera RAW file"),
    (b"MM\x00*", "a TIFF image or camera RAW file"),
    (b"8BPS", "a Photoshop document"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "a JPEG XL image"),
    (b"\x00\x00\x01\x00", "an icon file"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a program"),
    (b"OggS", "an audio or video file"),
    (b"ID3", "an audio file"),
    (b"fLaC", "an audio file"),
    (b"\x1a\x45\xdf\xa3", "a video"),
    (b"{\\rtf", "a text document"),
)

# Zip readers find the end-of-central-directory record by scanning back from the end of the
# file, so a ZIP appended to a valid JPEG is still a ZIP (APPNOTE.TXT 4.3.16: the record is 22
# bytes plus a comment of at most 65535 bytes).
_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_EOCD_SEARCH = _EOCD_SIZE + 0xFFFF

# Acrobat accepts the PDF header anywhere in the first 1024 bytes (Adobe PDF Reference 1.7,
# appendix H, implementation note 13), so a photo with "%PDF-" near its start is also a PDF.
_PDF_SEARCH = 1024

# No accepted format fits a 1x1 image in fewer bytes (a minimal GIF is 26, PNG 67).
_MIN_IMAGE_BYTES = 26


def sniff(data: bytes) -> ImageType:
    """Decide from ``data``'s bytes whether it is an accepted photo, and which type.

    :param data: the whole uploaded file.
    :returns: the accepted type.
    :raises CorruptImage: if ``data`` is empty, or starts like an accepted type but is too short
        to hold an image.
    :raises UnsupportedImageType: for every other type and for polyglots (a photo that is also a
        ZIP archive or a PDF), naming what was recognised.
    """
    if not data:
        raise CorruptImage()
    kind = _accepted_type(data)
    if kind is None:
        raise UnsupportedImageType(_describe_refused(data))
    if len(data) < _MIN_IMAGE_BYTES:
        raise CorruptImage(_article(kind).split(" ", 1)[1])
    if _has_zip_trailer(data):
        raise UnsupportedImageType(f"a ZIP archive disguised as {_article(kind)} image")
    if b"%PDF-" in data[:_PDF_SEARCH]:
        raise UnsupportedImageType(f"a PDF document disguised as {_article(kind)} image")
    if kind.format == "avif" and not features.check("avif"):
        raise UnsupportedImageType("an AVIF image, which this server cannot read")
    return kind


def _article(kind: ImageType) -> str:
    name = kind.pillow_format if kind.format != "webp" else "WebP"
    return f"an {name}" if name[0] in "AEIOU" else f"a {name}"


def _accepted_type(data: bytes) -> ImageType | None:
    if data.startswith(b"\xff\xd8\xff"):
        return ImageType("jpeg", "image/jpeg", "JPEG")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ImageType("png", "image/png", "PNG")
    if data.startswith((b"GIF87a", b"GIF89a")):
        return ImageType("gif", "image/gif", "GIF")
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return ImageType("webp", "image/webp", "WEBP")
    if data[4:8] == b"ftyp":
        return _iso_media_type(data)
    return None


def _iso_media_type(data: bytes) -> ImageType | None:
    """HEIF or AVIF from the ``ftyp`` box's major and compatible brands, else ``None``."""
    (box_size,) = struct.unpack(">I", data[:4])
    box_end = min(box_size, len(data), 4096) if box_size >= 16 else 16
    major = data[8:12]
    brands = [major] + [data[i : i + 4] for i in range(16, box_end - 3, 4)]
    # The major brand decides when it is specific; a generic "mif1" defers to the list.
    for brand in brands:
        if brand in _AVIF_BRANDS:
            return ImageType("avif", "image/avif", "AVIF")
        if brand in _HEIC_BRANDS:
            return ImageType("heif", "image/heic", "HEIF")
        if brand in _HEIC_SEQUENCE_BRANDS:
            return ImageType("heif", "image/heic-sequence", "HEIF")
    if major == b"msf1":
        return ImageType("heif", "image/heif-sequence", "HEIF")
    if any(brand in _HEIF_BRANDS for brand in brands):
        return ImageType("heif", "image/heif", "HEIF")
    return None


def _describe_refused(data: bytes) -> str | None:
    """What a refused file looks like, as a noun phrase, or ``None`` if unrecognised."""
    for prefix, description in _REFUSED_PREFIXES:
        if data.startswith(prefix):
            return description
    if data[4:8] == b"ftyp":
        return "a video or other ISO media file"
    if data.startswith(b"RIFF"):
        return "a RIFF audio or video file"
    text = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n\x0c").lower()
    if text.startswith(b"<"):
        # WHATWG MIME sniffing treats a leading tag as markup; SVG is XML naming the svg element.
        if b"<svg" in text:
            return "an SVG drawing"
        if text.startswith(b"<?xml"):
            return "an XML document"
        return "an HTML document"
    if _looks_like_text(data[:1024]):
        return "a text file"
    return None


def _looks_like_text(head: bytes) -> bool:
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the 1024-byte boundary is still text.
        try:
            decoded = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(ch.isprintable() or ch in "\t\r\n\x0c" for ch in decoded)


def _has_zip_trailer(data: bytes) -> bool:
    """Whether ``data`` ends with a ZIP end-of-central-directory record that zip tools accept.

    A candidate counts only if its comment length runs exactly to the end of the file, which a
    random ``PK\\x05\\x06`` inside compressed image data almost never does.
    """
    start = max(0, len(data) - _EOCD_SEARCH)
    at = data.rfind(_EOCD, start)
    while at >= 0:
        if at + _EOCD_SIZE <= len(data):
            (comment_length,) = struct.unpack("<H", data[at + 20 : at + 22])
            if at + _EOCD_SIZE + comment_length == len(data):
                return True
        at = data.rfind(_EOCD, start, at)
    return False
