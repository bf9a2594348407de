"""Type sniffing: decided by the bytes, polyglots refused, errors that survive pickling."""

from __future__ import annotations

import io
import pickle
import zipfile

import pytest
from PIL import features

from tests.photos import make_image_bytes
from web.errors import ApiError
from web.pipeline import (
    CorruptImage,
    ImageTooLarge,
    PipelineBusy,
    UnsupportedImageType,
)
from web.pipeline.formats import accepted_types, check_pixels, sniff


@pytest.mark.parametrize(
    ("fmt", "expected_format", "expected_mime"),
    [
        ("jpeg", "jpeg", "image/jpeg"),
        ("png", "png", "image/png"),
        ("webp", "webp", "image/webp"),
        ("gif", "gif", "image/gif"),
        ("heic", "heif", "image/heic"),
        ("avif", "avif", "image/avif"),
    ],
)
def test_accepted_formats_are_recognised_from_their_bytes(
    fmt: str, expected_format: str, expected_mime: str
) -> None:
    kind = sniff(make_image_bytes(fmt, size=(64, 48)))
    assert (kind.format, kind.mime_type) == (expected_format, expected_mime)


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\0\0\0\0" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + bytes(32)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_ftyp(b"mif1", b"mif1", b"heic"), ("heif", "image/heic")),
        (_ftyp(b"mif1", b"mif1", b"miaf", b"avif"), ("avif", "image/avif")),
        (_ftyp(b"msf1", b"msf1", b"hevc"), ("heif", "image/heic-sequence")),
        (_ftyp(b"mif1", b"mif1"), ("heif", "image/heif")),
        (_ftyp(b"avis", b"avis", b"msf1"), ("avif", "image/avif")),
    ],
)
def test_heif_family_brands(data: bytes, expected: tuple[str, str]) -> None:
    kind = sniff(data)
    assert (kind.format, kind.mime_type) == expected


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(40), "a ZIP archive"),
        (b"\n  <svg xmlns='http://www.w3.org/2000/svg'></svg>", "an SVG drawing"),
        (b"\xef\xbb\xbf<?xml version='1.0'?><svg/>", "an SVG drawing"),
        (b"<?xml version='1.0'?><note>hello</note>", "an XML document"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "an HTML document"),
        (b"<script>alert(1)</script>" + bytes(8), "an HTML document"),
        (b"BM" + bytes(60), "a BMP image"),
        (b"II*\x00" + bytes(60), "a TIFF image or camera RAW file"),
        (b"\x00\x00\x00\x0cJXL \r\n\x87\n" + bytes(20), "a JPEG XL image"),
        (_ftyp(b"isom", b"isom", b"mp41"), "a video or other ISO media file"),
        (b"\x7fELF\x02\x01\x01" + bytes(60), "a program"),
        (b"just some words, a note saved as photo.jpg\n", "a text file"),
    ],
)
def test_refused_types_are_named(data: bytes, named: str) -> None:
    with pytest.raises(UnsupportedImageType) as caught:
        sniff(data)
    error = caught.value
    assert (error.status, error.code, error.detected) == (415, "unsupported_media_type", named)
    assert named in error.message
    assert accepted_types() in error.message


def test_unrecognised_bytes_are_refused_without_a_name() -> None:
    with pytest.raises(UnsupportedImageType) as caught:
        sniff(bytes(range(256)) * 4)
    assert caught.value.detected is None
    assert "Accepted types: JPEG, PNG, WebP, GIF, HEIC/HEIF" in caught.value.message


def test_avif_is_listed_when_pillow_can_read_it() -> None:
    assert ("AVIF" in accepted_types()) == features.check("avif")


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("payload.txt", "hello")
        archive.comment = b"a comment moves the end record away from the end"
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["jpeg", "png", "gif", "webp"])
def test_zip_appended_to_a_photo_is_refused(fmt: str) -> None:
    polyglot = make_image_bytes(fmt, size=(64, 48)) + _zip()
    assert zipfile.is_zipfile(io.BytesIO(polyglot))  # the premise: zip tools open it
    with pytest.raises(UnsupportedImageType, match="ZIP archive disguised as"):
        sniff(polyglot)


def test_pdf_header_inside_a_photo_is_refused() -> None:
    jpeg = make_image_bytes("jpeg", size=(64, 48))
    polyglot = jpeg[:2] + b"\xff\xfe\x00\x10%PDF-1.4 obj  " + jpeg[2:]  # in a COM segment
    with pytest.raises(UnsupportedImageType, match="PDF document disguised as a JPEG"):
        sniff(polyglot)


def test_end_record_signature_inside_image_data_is_not_a_zip() -> None:
    # "PK\x05\x06" can occur in compressed data; without a consistent record it is not a zip.
    jpeg = make_image_bytes("jpeg", size=(64, 48))
    data = jpeg[:-200] + b"PK\x05\x06" + jpeg[-196:]
    assert sniff(data).format == "jpeg"


def test_empty_input_is_corrupt_not_unsupported() -> None:
    with pytest.raises(CorruptImage) as caught:
        sniff(b"")
    assert (caught.value.status, caught.value.code) == (422, "corrupt_image")


def test_pixel_limit_message_gives_count_and_limit() -> None:
    check_pixels(10_000, 10_000, 100_000_000)
    with pytest.raises(ImageTooLarge) as caught:
        check_pixels(10_001, 10_000, 100_000_000)
    error = caught.value
    assert (error.status, error.code) == (413, "image_too_large")
    assert "100,010,000 pixels" in error.message
    assert "100,000,000" in error.message


@pytest.mark.parametrize(
    "error",
    [
        UnsupportedImageType("a PDF document"),
        UnsupportedImageType(),
        CorruptImage("JPEG"),
        CorruptImage(),
        ImageTooLarge(900_000_000, 100_000_000),
        PipelineBusy(),
    ],
    ids=repr,
)
def test_errors_survive_pickling(error: ApiError) -> None:
    # Worker processes send exceptions to the parent by pickle.
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert (copy.status, copy.code, copy.message, copy.headers) == (
        error.status,
        error.code,
        error.message,
        error.headers,
    )


def test_busy_asks_the_client_to_retry() -> None:
    busy = PipelineBusy()
    assert (busy.status, busy.code, busy.headers) == (503, "busy", {"Retry-After": "2"})


@pytest.mark.parametrize("data", [b"\xff\xd8\xff", b"\xff\xd8\xff\xe0\x00\x10JFIF", b"GIF89a\x01"])
def test_a_few_bytes_of_a_photo_are_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptImage):
        sniff(data)
