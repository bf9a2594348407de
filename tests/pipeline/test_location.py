"""Location removal from originals (web.pipeline.location): every accepted container keeps its
length, pixels and capture time and loses its GPS tags; a file without any, or one it cannot
parse, is returned untouched."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from tests.photos import make_image_bytes, make_phone_jpeg
from web.pipeline.location import strip_location
from web.pipeline.renditions import RenditionSpec, render_file

CAPTURED = "2026:06:13 18:42:07"


def located(kind: str) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 1
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = CAPTURED
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(
        {1: "N", 2: (48.0, 51.0, 29.6), 3: "E", 4: (2.0, 17.0, 40.1), 6: 35.0}
    )
    out = io.BytesIO()
    with Image.open(io.BytesIO(make_image_bytes("png", size=(320, 240), name="rocket"))) as src:
        src.convert("RGB").save(out, kind, exif=exif.tobytes())
    return out.getvalue()


def gps_and_capture(data: bytes) -> tuple[dict[int, object], object, bytes]:
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        return (
            dict(exif.get_ifd(ExifTags.IFD.GPSInfo)),
            exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.DateTimeOriginal),
            image.tobytes(),
        )


@pytest.mark.parametrize("kind", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_gps_is_blanked_in_place_and_the_rest_kept(kind: str) -> None:
    data = located(kind)
    gps, captured, pixels = gps_and_capture(data)
    assert gps and captured == CAPTURED
    stripped = strip_location(data)
    assert len(stripped) == len(data) and stripped != data
    assert gps_and_capture(stripped) == ({}, CAPTURED, pixels)
    if kind == "PNG":  # every chunk's CRC still right: a strict decoder takes it
        with Image.open(io.BytesIO(stripped)) as image:
            image.verify()


def test_xmp_gps_properties_are_blanked(tmp_path: Path) -> None:
    data = make_phone_jpeg(tmp_path / "p.jpg", gps=False).read_bytes()
    assert b"exif:GPSLatitude" in data
    stripped = strip_location(data)
    assert b"GPS" not in stripped and len(stripped) == len(data)
    assert b"<x:xmpmeta" in stripped  # the packet stays, with the rest of its properties


def test_a_file_without_location_or_unparsable_is_returned_as_is() -> None:
    plain = make_image_bytes("jpeg", size=(64, 48))
    assert strip_location(plain) is plain
    damaged = located("JPEG")[:200]
    assert strip_location(damaged) == damaged
    noise = zlib.compress(b"not an image" * 100)
    assert strip_location(noise) is noise


def test_render_file_blanks_the_stored_original_unless_location_is_kept(tmp_path: Path) -> None:
    root = tmp_path
    data = located("JPEG")
    for keep, expect_gps in ((False, False), (True, True)):
        folder = root / f"keep-{keep}"
        folder.mkdir()
        (folder / "original").write_bytes(data)
        render_file(folder / "original", folder, RenditionSpec(keep_location=keep))
        stored = (folder / "original").read_bytes()
        assert bool(gps_and_capture(stored)[0]) is expect_gps
        assert (stored == data) is keep
