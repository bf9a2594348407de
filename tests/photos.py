"""Test photographs: real pictures in every format the image pipeline accepts, and hostile inputs.

The pictures are the sample photographs scikit-image ships inside its wheel (``coffee``,
``chelsea``, ``astronaut``, ``rocket``; no network), cropped to the requested aspect ratio and
resized. Everything here is deterministic and cached per process, so a 12 MP JPEG is encoded once
per test session however many tests ask for it.

Use :func:`reference_photo` for the upright truth, :func:`make_phone_jpeg` for a camera-like file
on disk, :func:`make_image_bytes` for the format corpus, :func:`hostile_corpus` for inputs the
service must refuse (with :data:`HOSTILE_EXPECTED_STATUS` giving the HTTP status for each) and
:func:`assert_upright` to check a rendition against the truth.
"""

from __future__ import annotations

import functools
import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pillow_heif
from PIL import ExifTags, Image, ImageCms, ImageOps, TiffImagePlugin

pillow_heif.register_heif_opener()

PHOTO_NAMES = ("coffee", "chelsea", "astronaut", "rocket")
"""Photographs available to :func:`reference_photo` (all bundled in scikit-image's wheel)."""

# What the EXIF Orientation tag asks a viewer to do (the same table as ImageOps.exif_transpose)
# and, for building files, the inverse: the transform that turns the upright picture into the
# stored pixels. 2, 3, 4, 5 and 7 are their own inverses; 6 and 8 invert each other.
_VIEWER_TRANSFORM: Mapping[int, Image.Transpose] = MappingProxyType(
    {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }
)
_STORE_TRANSFORM: Mapping[int, Image.Transpose] = MappingProxyType(
    {**_VIEWER_TRANSFORM, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
)

HOSTILE_EXPECTED_STATUS: Mapping[str, int] = MappingProxyType(
    {
        "truncated.jpg": 422,
        "bomb_30000x30000.png": 413,
        "bomb_65000x65000.jpg": 413,
        "svg_named.jpg": 415,
        "html_named.jpg": 415,
        "zip_with_jpeg_header.jpg": 415,
        "jpeg_then_zip.jpg": 415,
        "pdf_named.jpg": 415,
        "empty.jpg": 422,
        "random.jpg": 415,
    }
)
"""HTTP status the service must answer for each :func:`hostile_corpus` entry."""


def reference_photo(name: str = "coffee", size: tuple[int, int] = (4000, 3000)) -> Image.Image:
    """The upright truth: photograph ``name`` centre-cropped to ``size``'s aspect and resized.

    :param name: one of :data:`PHOTO_NAMES`.
    :param size: ``(width, height)`` in pixels; the default is a 12 MP 4:3 landscape frame.
    :returns: a new RGB image (a copy; mutate it freely).
    """
    return _reference(name, size).copy()


@functools.lru_cache(maxsize=16)
def _reference(name: str, size: tuple[int, int]) -> Image.Image:
    if name not in PHOTO_NAMES:
        raise ValueError(f"unknown photo {name!r}; choose from {PHOTO_NAMES}")
    import skimage.data  # slow import, only when a photo is first needed

    loader: Callable[[], np.ndarray] = getattr(skimage.data, name)
    src = Image.fromarray(loader()).convert("RGB")
    width, height = size
    if src.width * height > width * src.height:  # source is wider: crop the sides
        crop_w = round(src.height * width / height)
        left = (src.width - crop_w) // 2
        src = src.crop((left, 0, left + crop_w, src.height))
    else:
        crop_h = round(src.width * height / width)
        top = (src.height - crop_h) // 2
        src = src.crop((0, top, src.width, top + crop_h))
    return src.resize(size, Image.Resampling.LANCZOS)


def store_for_orientation(upright: Image.Image, orientation: int) -> Image.Image:
    """The pixels a camera stores so that EXIF ``orientation`` (1-8) shows ``upright``."""
    if orientation == 1:
        return upright.copy()
    return upright.transpose(_STORE_TRANSFORM[orientation])


def _phone_exif(orientation: int, gps: bool) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "ImageShark"
    exif[ExifTags.Base.Model] = "Test Phone 12"
    exif[ExifTags.Base.Software] = "tests/photos.py"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2024:06:01 12:34:56"
    if gps:
        rational = TiffImagePlugin.IFDRational
        gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps_ifd[ExifTags.GPS.GPSLatitudeRef] = "N"
        gps_ifd[ExifTags.GPS.GPSLatitude] = (rational(48), rational(51), rational(296, 10))
        gps_ifd[ExifTags.GPS.GPSLongitudeRef] = "E"
        gps_ifd[ExifTags.GPS.GPSLongitude] = (rational(2), rational(17), rational(401, 10))
    return exif


_XMP = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
    b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
    b'exif:GPSLatitude="48,51.4933N" exif:GPSLongitude="2,17.6683E"/>'
    b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)


def make_phone_jpeg(
    path: Path,
    *,
    orientation: int = 6,
    size: tuple[int, int] = (4000, 3000),
    name: str = "coffee",
    gps: bool = True,
    quality: int = 90,
    grain: int = 0,
) -> Path:
    """Write a camera-like JPEG whose EXIF ``orientation`` turns it into the reference photo.

    The file carries EXIF (Orientation, Make, Model, Software, DateTimeOriginal and, if ``gps``,
    a GPS IFD with latitude/longitude), an XMP packet with GPS and a JPEG comment: everything
    a rendition must drop.

    :param path: file to write (parents must exist).
    :param orientation: EXIF Orientation, 1-8; 5-8 store the picture ``size`` transposed.
    :param size: ``(width, height)`` of the upright picture, pixels.
    :param name: one of :data:`PHOTO_NAMES`.
    :param gps: include the GPS IFD (the XMP packet always has GPS).
    :param quality: JPEG quality, 1-95.
    :param grain: amplitude in 8-bit levels of uniform noise added to the pixels so that file size
        and entropy-decoding cost resemble a real sensor's output (an upscaled sample photo is
        unrealistically smooth); 0 for none.
    :returns: ``path``.
    """
    path.write_bytes(_phone_jpeg_bytes(orientation, size, name, gps, quality, grain))
    return path


@functools.lru_cache(maxsize=32)
def _phone_jpeg_bytes(
    orientation: int, size: tuple[int, int], name: str, gps: bool, quality: int, grain: int
) -> bytes:
    upright = _reference(name, size)
    if grain:
        rng = np.random.default_rng(12345)
        noise = rng.integers(-grain, grain + 1, (size[1], size[0], 3), dtype=np.int16)
        pixels = np.clip(np.asarray(upright, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
        upright = Image.fromarray(pixels)
    stored = store_for_orientation(upright, orientation)
    buf = io.BytesIO()
    stored.save(
        buf,
        "JPEG",
        quality=quality,
        exif=_phone_exif(orientation, gps),
        xmp=_XMP,
        comment=b"Shot on an ImageShark test phone",
    )
    return buf.getvalue()


def adobe_rgb_profile() -> bytes:
    """An ICC v2 display profile for Adobe RGB (1998), built here from the published constants.

    Primaries (x, y) R 0.64/0.33, G 0.21/0.71, B 0.15/0.06, white D65, gamma 563/256: *Adobe RGB
    (1998) Color Image Encoding*, version 2005-05, section 4.3. Colorants are
    adapted to the ICC D50 PCS with the Bradford transform (ICC.1:2010 Annex E). Wider than sRGB,
    so a pipeline that ignores the profile shows visibly desaturated colours.

    :returns: the profile bytes (about 500 bytes), for ``icc_profile=`` or ``ImageCms``.
    """
    return _adobe_rgb_profile()


@functools.lru_cache(maxsize=1)
def _adobe_rgb_profile() -> bytes:
    def xyz(x: float, y: float) -> np.ndarray:
        return np.array([x / y, 1.0, (1 - x - y) / y])

    primaries = np.column_stack([xyz(0.64, 0.33), xyz(0.21, 0.71), xyz(0.15, 0.06)])
    white_d65 = xyz(0.3127, 0.3290)
    white_d50 = np.array([0.9642, 1.0, 0.8249])  # ICC PCS illuminant
    to_xyz = primaries * np.linalg.solve(primaries, white_d65)
    bradford = np.array(
        [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]]
    )
    cone_ratio = np.diag((bradford @ white_d50) / (bradford @ white_d65))
    colorants = np.linalg.inv(bradford) @ cone_ratio @ bradford @ to_xyz

    def s15f16(*values: float) -> bytes:
        return b"".join(struct.pack(">i", round(v * 65536)) for v in values)

    def xyz_tag(values: np.ndarray) -> bytes:
        return b"XYZ \0\0\0\0" + s15f16(*values)

    description = b"ImageShark test Adobe RGB (1998)\0"
    tags = [
        (
            b"desc",
            b"desc\0\0\0\0"
            + struct.pack(">I", len(description))
            + description
            + struct.pack(">IIHB", 0, 0, 0, 0)
            + bytes(67),
        ),
        (b"cprt", b"text\0\0\0\0No copyright, test data\0"),
        (b"wtpt", xyz_tag(white_d50)),
        (b"rXYZ", xyz_tag(colorants[:, 0])),
        (b"gXYZ", xyz_tag(colorants[:, 1])),
        (b"bXYZ", xyz_tag(colorants[:, 2])),
        *(
            (sig, b"curv\0\0\0\0" + struct.pack(">IH", 1, 563) + b"\0\0")
            for sig in (b"rTRC", b"gTRC", b"bTRC")
        ),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table = struct.pack(">I", len(tags))
    body = b""
    for sig, data in tags:
        data += bytes(-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"\0\0\0\0"  # preferred CMM
        + bytes((2, 0x10, 0, 0))  # version 2.1
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
        + b"acsp"
        + bytes(4 + 4 + 4 + 4 + 8 + 4)  # platform, flags, maker, model, attributes, intent
        + s15f16(*white_d50)
        + bytes(4 + 16 + 28)  # creator, profile id, reserved
    )
    return header + table + body


def _srgb_to_adobe_rgb(image: Image.Image) -> Image.Image:
    adobe = ImageCms.ImageCmsProfile(io.BytesIO(adobe_rgb_profile()))
    srgb = ImageCms.createProfile("sRGB")
    converted = ImageCms.profileToProfile(
        image, srgb, adobe, renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC
    )
    assert converted is not None
    return converted


_ALPHA_MODES = ("RGBA", "LA", "PA")


def transparent_region(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Box ``(left, top, right, bottom)`` that :func:`make_image_bytes` makes fully transparent.

    It is the upright picture's left third; the rest is opaque.
    """
    return (0, 0, size[0] // 3, size[1])


def make_image_bytes(
    fmt: str,
    *,
    size: tuple[int, int] = (800, 600),
    name: str = "coffee",
    mode: str = "RGB",
    orientation: int = 1,
    icc: bool = False,
    transparent: bool = False,
) -> bytes:
    """Encode the reference photo as a file of format ``fmt``.

    :param fmt: ``"jpeg"``, ``"png"``, ``"webp"``, ``"gif"``, ``"heic"`` (or ``"heif"``) or
        ``"avif"``.
    :param size: ``(width, height)`` of the upright picture, pixels.
    :param name: one of :data:`PHOTO_NAMES`.
    :param mode: Pillow mode of the stored pixels: ``"RGB"``, ``"RGBA"``, ``"L"``, ``"LA"``,
        ``"P"``, ``"1"``, ``"CMYK"`` (JPEG only), ``"I;16"`` (16-bit grey, PNG only) or
        ``"RGB;16"``/``"RGBA;16"`` (16 bits per channel, PNG only). GIF is always ``"P"``.
    :param orientation: EXIF Orientation (1-8) to write; the pixels are stored so that applying
        it gives the upright picture. Not possible for GIF.
    :param icc: convert the pixels to Adobe RGB (1998) and embed :func:`adobe_rgb_profile`, so
        only a pipeline honouring the profile gets the reference colours back (RGB modes only).
    :param transparent: make :func:`transparent_region` fully transparent (mode ``"RGB"`` becomes
        ``"RGBA"``; GIF and ``"P"`` use a transparent palette index).
    :returns: the encoded file. Cached: the same arguments give the same bytes quickly.
    :raises ValueError: on a combination the format cannot store.
    """
    return _image_bytes(fmt.lower(), size, name, mode, orientation, icc, transparent)


@functools.lru_cache(maxsize=256)
def _image_bytes(
    fmt: str,
    size: tuple[int, int],
    name: str,
    mode: str,
    orientation: int,
    icc: bool,
    transparent: bool,
) -> bytes:
    fmt = {"jpg": "jpeg", "heif": "heic"}.get(fmt, fmt)
    if fmt not in ("jpeg", "png", "webp", "gif", "heic", "avif"):
        raise ValueError(f"unknown format {fmt!r}")
    if fmt == "gif":
        if orientation != 1 or icc:
            raise ValueError("GIF stores neither EXIF orientation nor an ICC profile")
        mode = "P"
    if transparent and mode == "RGB":
        mode = "RGBA"
    if transparent and mode not in (*_ALPHA_MODES, "P", "RGBA;16"):
        raise ValueError(f"mode {mode} has no transparency")
    if mode in ("I;16", "RGB;16", "RGBA;16") and fmt != "png":
        raise ValueError("16-bit samples only in PNG")
    if mode == "CMYK" and fmt != "jpeg":
        raise ValueError("CMYK only in JPEG")

    upright = _reference(name, size)
    if icc:
        if mode not in ("RGB", "RGBA"):
            raise ValueError("icc=True needs an RGB mode")
        upright = _srgb_to_adobe_rgb(upright)
    stored = store_for_orientation(_convert(upright, mode, transparent), orientation)

    if mode in ("RGB;16", "RGBA;16"):
        return _png_16bit(stored, orientation=orientation)

    params: dict[str, object] = {}
    if orientation != 1:
        exif = Image.Exif()
        exif[ExifTags.Base.Orientation] = orientation
        params["exif"] = exif.tobytes()
    if icc:
        params["icc_profile"] = adobe_rgb_profile()
    if fmt == "jpeg":
        params["quality"] = 92
    elif fmt in ("webp", "heic", "avif"):
        params["quality"] = 90
    if fmt == "avif":
        params["speed"] = 10
    # The encoders' fastest settings: valid files of the same picture in a fraction of the
    # time (a 3600x2700 HEIC 7.2 s -> 1.2 s; a 4000x3000 PNG 2.2 s -> 0.6 s, 30 % larger).
    if fmt == "heic":
        params["enc_params"] = {"preset": "ultrafast"}
    if fmt == "png":
        params["compress_level"] = 1
    buf = io.BytesIO()
    stored.save(buf, {"heic": "HEIF"}.get(fmt, fmt.upper()), **params)
    return buf.getvalue()


def _convert(upright: Image.Image, mode: str, transparent: bool) -> Image.Image:
    """``upright`` (RGB) in ``mode``, with the transparent region applied if asked."""
    alpha = Image.new("L", upright.size, 255)
    if transparent:
        alpha.paste(0, transparent_region(upright.size))
    if mode == "P":
        paletted = upright.quantize(255 if transparent else 256)
        if transparent:
            # Index 255 must exist in the palette for encoders to write its alpha.
            palette = paletted.getpalette() or []
            paletted.putpalette(palette + [255] * (768 - len(palette)))
            paletted.paste(255, transparent_region(upright.size))
            paletted.info["transparency"] = 255
        return paletted
    if mode == "I;16":
        grey = np.asarray(upright.convert("L"), dtype=np.uint16) * 257
        return Image.fromarray(grey)
    if mode == "RGB;16":
        return upright
    if mode == "RGBA;16":
        converted = upright.convert("RGBA")
        converted.putalpha(alpha)
        return converted
    converted = upright.convert(mode)
    if mode in _ALPHA_MODES:
        converted.putalpha(alpha)
    return converted


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, depth: int, colour_type: int, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _png_16bit(stored: Image.Image, *, orientation: int) -> bytes:
    """A 16-bit-per-channel PNG (Pillow cannot write one): each 8-bit sample ``v`` as ``257*v``."""
    if orientation != 1:
        raise ValueError("16-bit PNG is written without EXIF")
    samples = np.asarray(stored, dtype=np.uint16) * 257
    height, width, channels = samples.shape
    rows = samples.astype(">u2").reshape(height, width * channels).view(np.uint8)
    filtered = np.hstack([np.zeros((height, 1), np.uint8), rows])  # filter type 0 per row
    colour_type = 6 if channels == 4 else 2
    return _png(width, height, 16, colour_type, zlib.compress(filtered.tobytes(), 6))


def hostile_corpus() -> dict[str, bytes]:
    """Inputs the pipeline must refuse, by file name; :data:`HOSTILE_EXPECTED_STATUS` has the
    status for each.

    - ``truncated.jpg``: a real JPEG cut after 60 % of its bytes (422).
    - ``bomb_30000x30000.png``: a valid PNG header for 900 MP with a tiny IDAT of zeros; only
      the header is real, so building it allocates nothing (413).
    - ``bomb_65000x65000.jpg``: a real JPEG whose frame header claims 65000x65000 (413).
    - ``svg_named.jpg``, ``html_named.jpg``, ``pdf_named.jpg``: documents, not photos (415).
    - ``zip_with_jpeg_header.jpg``: a complete, decodable JPEG with a ZIP archive appended, which
      zip tools open (a polyglot) (415).
    - ``jpeg_then_zip.jpg``: JPEG magic bytes followed directly by a ZIP archive (415).
    - ``empty.jpg``: zero bytes (422).
    - ``random.jpg``: 64 KiB of seeded random bytes (415).

    :returns: a new dict each call (the bytes are cached).
    """
    return dict(_hostile())


@functools.lru_cache(maxsize=1)
def _hostile() -> tuple[tuple[str, bytes], ...]:
    jpeg = make_image_bytes("jpeg", size=(320, 240))
    rows_of_zeros = zlib.compress(bytes((30000 * 3 + 1) * 8), 9)

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("index.html", "<html><script>alert(document.domain)</script></html>")
    corpus = {
        "truncated.jpg": jpeg[: len(jpeg) * 6 // 10],
        "bomb_30000x30000.png": _png(30000, 30000, 8, 2, rows_of_zeros),
        "bomb_65000x65000.jpg": _patch_jpeg_size(jpeg, 65000, 65000),
        "svg_named.jpg": (
            b'<?xml version="1.0" encoding="UTF-8"?>\n'
            b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
            b'<script>alert(1)</script><rect width="100" height="100" fill="red"/></svg>\n'
        ),
        "html_named.jpg": (
            b"<!DOCTYPE html>\n<html><head><title>x</title></head>"
            b"<body><script>alert(document.cookie)</script></body></html>\n"
        ),
        "zip_with_jpeg_header.jpg": jpeg + archive.getvalue(),
        "jpeg_then_zip.jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + archive.getvalue(),
        "pdf_named.jpg": (
            b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
            b"trailer << /Root 1 0 R >>\n%%EOF\n"
        ),
        "empty.jpg": b"",
        "random.jpg": random.Random(20240601).randbytes(64 * 1024),
    }
    assert corpus.keys() == HOSTILE_EXPECTED_STATUS.keys()
    return tuple(corpus.items())


def _patch_jpeg_size(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its SOF0 frame header claiming ``width`` x ``height``."""
    sof = jpeg.index(b"\xff\xc0")
    # SOF0: marker(2) length(2) precision(1) height(2) width(2)
    return jpeg[: sof + 5] + struct.pack(">HH", height, width) + jpeg[sof + 9 :]


def _mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).mean())


def assert_upright(
    rendition: Image.Image, reference: Image.Image, *, threshold: float = 12.0
) -> None:
    """Assert ``rendition`` shows ``reference`` upright and unmirrored.

    Both are compared in RGB after resizing the reference (and each of its 7 rotations/mirrors)
    to the rendition's size. The rendition must be closest to the identity, and its mean absolute
    difference per 8-bit sample must be below ``threshold``, which lies between the differences
    of a rotated or mirrored rendition and of JPEG and resampling alone
    (docs/decisions/0020-orientation-check-threshold.md).

    :raises AssertionError: with all eight differences in the message.
    """
    got = rendition.convert("RGB")
    same = reference.convert("RGB").resize(got.size, Image.Resampling.BOX)
    # Resize before transposing: transposing a 12 MP reference eight times takes seconds.
    swapped = reference.convert("RGB").resize(got.size[::-1], Image.Resampling.BOX)
    diffs = {1: _mean_abs_diff(got, same)}
    for orientation, transform in _VIEWER_TRANSFORM.items():
        source = swapped if orientation >= 5 else same
        diffs[orientation] = _mean_abs_diff(got, source.transpose(transform))
    closest = min(diffs, key=diffs.__getitem__)
    summary = ", ".join(f"{o}: {d:.1f}" for o, d in diffs.items())
    assert closest == 1, f"rendition looks like orientation {closest} ({summary})"
    assert diffs[1] < threshold, f"rendition differs by {diffs[1]:.1f} (>= {threshold}) ({summary})"


def exif_transposed(image: Image.Image) -> Image.Image:
    """``ImageOps.exif_transpose`` with a non-optional return, for tests."""
    result = ImageOps.exif_transpose(image)
    assert result is not None
    return result
