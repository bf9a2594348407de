"""Renditions of real photographs in every accepted format, and refusal of hostile files.

Each rendition must be upright, within its size limit and never upscaled, report the size of the
file as written, be sRGB, and carry no metadata at all.
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageCms, JpegImagePlugin

from tests.photos import (
    HOSTILE_EXPECTED_STATUS,
    adobe_rgb_profile,
    assert_upright,
    hostile_corpus,
    make_image_bytes,
    make_phone_jpeg,
    reference_photo,
    transparent_region,
)
from web.errors import ApiError
from web.pipeline import (
    CorruptImage,
    ImageTooLarge,
    RenditionResult,
    RenditionSpec,
    UnsupportedImageType,
)
from web.pipeline import renditions as renditions_module
from web.pipeline.formats import sniff
from web.pipeline.renditions import (
    Renditions,
    render_bytes,
    render_file,
    stage_and_render,
    stage_and_render_temporary,
)

SMALL = RenditionSpec(display_max_px=500, thumb_max_px=120)
FORMATS = ["jpeg", "png", "webp", "gif", "heic", "avif"]
EXIF_FORMATS = ["jpeg", "png", "webp", "heic", "avif"]

# Marker segments a clean baseline JPEG needs: APP0 (JFIF), DQT, SOF0, DHT, DRI, SOS.
_ALLOWED_MARKERS = {0xE0, 0xDB, 0xC0, 0xC4, 0xDD, 0xDA}
_JFIF_INFO = {"jfif", "jfif_version", "jfif_unit", "jfif_density"}


def _segments(jpeg: bytes) -> tuple[list[int], bytes]:
    """Marker codes before the scan data, and the header bytes they span."""
    assert jpeg[:2] == b"\xff\xd8", "not a JPEG"
    markers: list[int] = []
    at = 2
    while True:
        assert jpeg[at] == 0xFF
        marker = jpeg[at + 1]
        markers.append(marker)
        (length,) = struct.unpack(">H", jpeg[at + 2 : at + 4])
        at += 2 + length
        if marker == 0xDA:
            return markers, jpeg[:at]


def assert_clean_jpeg(data: bytes, size: tuple[int, int]) -> Image.Image:
    """``data`` is a baseline RGB JPEG of ``size`` with no metadata at all; returns it decoded."""
    markers, header = _segments(data)
    assert set(markers) <= _ALLOWED_MARKERS, f"unexpected segments {[hex(m) for m in markers]}"
    # Scan data is arbitrary bytes, so short strings are searched for only in the header;
    # long signatures cannot occur by chance and are searched for everywhere.
    for needle in (b"Exif", b"GPS", b"ICC_PROFILE", b"xmp", b"Photoshop", b"ImageShark"):
        assert needle not in header, needle
    for needle in (b"Exif\x00\x00", b"http://ns.adobe.com/xap", b"Test Phone 12"):
        assert needle not in data, needle
    assert data.endswith(b"\xff\xd9"), "data after the end of image"
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "JPEG"
    assert image.mode == "RGB"
    assert image.size == size
    assert set(image.info) <= _JFIF_INFO, image.info.keys()
    assert not image.getexif()
    return image


def check(
    renditions: Renditions, upright: tuple[int, int], spec: RenditionSpec
) -> tuple[Image.Image, Image.Image]:
    """Sizes within limits, never upscaled, reported equal to the files; both files clean."""
    result = renditions.result
    assert (result.original_width, result.original_height) == upright
    display = (result.display_width, result.display_height)
    thumb = (result.thumb_width, result.thumb_height)
    assert max(display) == min(spec.display_max_px, max(upright))
    assert max(thumb) == min(spec.thumb_max_px, max(display))
    assert display[0] <= upright[0] and display[1] <= upright[1]
    assert thumb[0] <= display[0] and thumb[1] <= display[1]
    for got, want in ((display, upright), (thumb, upright)):  # aspect ratio kept
        assert abs(got[0] / got[1] - want[0] / want[1]) < 2 / min(got)
    return assert_clean_jpeg(renditions.display, display), assert_clean_jpeg(
        renditions.thumb, thumb
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_upright_and_clean(fmt: str) -> None:
    data = make_image_bytes(fmt, size=(800, 600), name="chelsea")
    out = render_bytes(data, SMALL)
    kind = sniff(data)
    assert (out.result.format, out.result.mime_type) == (kind.format, kind.mime_type)
    display, thumb = check(out, (800, 600), SMALL)
    assert display.size == (500, 375)
    assert thumb.size == (120, 90)
    reference = reference_photo("chelsea", (800, 600))
    assert_upright(display, reference)
    assert_upright(thumb, reference)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", EXIF_FORMATS)
def test_exif_orientation_is_applied(fmt: str, orientation: int) -> None:
    data = make_image_bytes(fmt, size=(640, 480), name="coffee", orientation=orientation)
    display, _ = check(render_bytes(data, SMALL), (640, 480), SMALL)
    assert_upright(display, reference_photo("coffee", (640, 480)))


@pytest.fixture(scope="module")
def phone_jpegs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """A 12 MP phone JPEG with each EXIF orientation (written once for the module)."""
    folder = tmp_path_factory.mktemp("phone")
    return {o: make_phone_jpeg(folder / f"o{o}.jpg", orientation=o) for o in (1, 6, 8)}


@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_12mp_phone_photo(phone_jpegs: dict[int, Path], orientation: int, tmp_path: Path) -> None:
    source = phone_jpegs[orientation]
    result = render_file(source, tmp_path, RenditionSpec())
    display_bytes = (tmp_path / "display.jpg").read_bytes()
    thumb_bytes = (tmp_path / "thumb.jpg").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["display.jpg", "thumb.jpg"]
    assert result.render_seconds > 0
    display, thumb = check(
        Renditions(result=result, display=display_bytes, thumb=thumb_bytes),
        (4000, 3000),
        RenditionSpec(),
    )
    assert (display.size, thumb.size) == ((1600, 1200), (400, 300))
    assert_upright(display, reference_photo())
    assert_upright(thumb, reference_photo())


class DraftSpy:
    """Records each JPEG draft request and the decode size it produced."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[tuple[int, int], tuple[int, int], tuple[int, int]]] = []
        original = JpegImagePlugin.JpegImageFile.draft

        def draft(image: JpegImagePlugin.JpegImageFile, mode: str | None, size: Any) -> Any:
            stored = image.size
            answer = original(image, mode, size)
            self.calls.append((stored, tuple(size), image.size))
            return answer

        monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", draft)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_is_decoded_dct_scaled_in_stored_orientation(
    orientation: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1632x1224 for an 800 px display: a half-scale decode (816x612) covers it. Asking for the
    # upright 800x600 on a portrait-stored 1224x1632 would defeat the scaling.
    data = make_image_bytes("jpeg", size=(1632, 1224), name="rocket", orientation=orientation)
    spy = DraftSpy(monkeypatch)
    spec = RenditionSpec(display_max_px=800, thumb_max_px=200)
    display, _ = check(render_bytes(data, spec), (1632, 1224), spec)
    transposed = orientation >= 5
    stored = (1224, 1632) if transposed else (1632, 1224)
    requested = (600, 800) if transposed else (800, 600)
    decoded = (612, 816) if transposed else (816, 612)
    assert spy.calls == [(stored, requested, decoded)]
    assert display.size == (800, 600)
    assert_upright(display, reference_photo("rocket", (1632, 1224)))


def _mean_abs_diff(a: Image.Image, b: Image.Image, size: tuple[int, int] | None = None) -> float:
    """Mean absolute difference per 8-bit sample, both resized to ``size`` (default ``a``'s)."""
    size = size or a.size
    a_pixels = np.asarray(a.convert("RGB").resize(size, Image.Resampling.BOX), np.int16)
    b_pixels = np.asarray(b.convert("RGB").resize(size, Image.Resampling.BOX), np.int16)
    return float(np.abs(a_pixels - b_pixels).mean())


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif", "heic"])
def test_embedded_icc_profile_is_converted_to_srgb(fmt: str) -> None:
    data = make_image_bytes(fmt, size=(600, 400), name="coffee", icc=True, orientation=6)
    reference = reference_photo("coffee", (600, 400))
    as_stored = Image.open(io.BytesIO(data))
    assert as_stored.info["icc_profile"] == adobe_rgb_profile()  # the premise
    # Compared at 60x40: a colour shift survives averaging, JPEG and resampling noise do not.
    coarse = (60, 40)
    ignoring_profile = _mean_abs_diff(as_stored.rotate(-90, expand=True), reference, coarse)
    assert ignoring_profile > 6, ignoring_profile  # Adobe RGB values shown as sRGB: desaturated

    display, _ = check(render_bytes(data, SMALL), (600, 400), SMALL)
    converted = _mean_abs_diff(display, reference, coarse)
    assert converted < 2, converted


def test_srgb_profile_is_recognised_and_not_converted() -> None:
    plain = reference_photo("rocket", (600, 400))
    tagged = io.BytesIO()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    plain.save(tagged, "PNG", icc_profile=srgb)
    untagged = io.BytesIO()
    plain.save(untagged, "PNG")
    with_profile = render_bytes(tagged.getvalue(), SMALL)
    assert with_profile.display == render_bytes(untagged.getvalue(), SMALL).display


def test_unusable_icc_profile_is_ignored() -> None:
    plain = reference_photo("rocket", (600, 400))
    buf = io.BytesIO()
    plain.save(buf, "JPEG", icc_profile=b"not a profile" * 20)
    display, _ = check(render_bytes(buf.getvalue(), SMALL), (600, 400), SMALL)
    assert_upright(display, plain)


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("png", "RGBA"),
        ("png", "P"),
        ("png", "LA"),
        ("png", "RGBA;16"),
        ("gif", "P"),
        ("webp", "RGBA"),
        ("avif", "RGBA"),
        ("heic", "RGBA"),
    ],
)
def test_transparency_is_flattened_onto_white(fmt: str, mode: str) -> None:
    size = (600, 450)
    data = make_image_bytes(fmt, size=size, mode=mode, transparent=True)
    display, _ = check(render_bytes(data, SMALL), size, SMALL)
    scale = display.width / size[0]
    _, top, right, bottom = transparent_region(size)
    # JPEG rings around the sharp edge within its 16-pixel MCUs; look beyond that.
    edge = round(right * scale)
    inside = display.crop((0, 0, edge - 16, display.height))
    assert np.asarray(inside).min() >= 245, "transparent area is not white"
    opaque = display.crop((edge + 16, 0, display.width, display.height))
    reference = reference_photo("coffee", size).crop(
        (round((edge + 16) / scale), top, size[0], bottom)
    )
    if mode == "LA":
        reference = reference.convert("L")
    assert _mean_abs_diff(opaque, reference) < 10


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [("jpeg", "L"), ("png", "L"), ("png", "1"), ("png", "I;16"), ("png", "RGB;16"), ("png", "P")],
)
def test_grey_palette_and_16_bit_modes(fmt: str, mode: str) -> None:
    data = make_image_bytes(fmt, size=(600, 450), mode=mode, name="astronaut")
    display, thumb = check(render_bytes(data, SMALL), (600, 450), SMALL)
    reference = reference_photo("astronaut", (600, 450))
    if mode in ("L", "I;16", "1"):
        reference = reference.convert("L")
    # A 1-bit image is dithered; only its layout is comparable, at a coarser tolerance.
    assert_upright(display, reference, threshold=40 if mode == "1" else 12)
    assert_upright(thumb, reference, threshold=40 if mode == "1" else 12)


def test_cmyk_jpeg() -> None:
    data = make_image_bytes("jpeg", size=(600, 450), mode="CMYK", orientation=3)
    display, _ = check(render_bytes(data, SMALL), (600, 450), SMALL)
    assert_upright(display, reference_photo("coffee", (600, 450)))


def test_gif_uses_the_first_frame() -> None:
    first = reference_photo("coffee", (300, 200))
    second = reference_photo("rocket", (300, 200))
    buf = io.BytesIO()
    first.save(buf, "GIF", save_all=True, append_images=[second], duration=100)
    display, _ = check(render_bytes(buf.getvalue(), SMALL), (300, 200), SMALL)
    assert_upright(display, first, threshold=15)


@pytest.mark.parametrize(
    ("size", "display", "thumb"),
    [
        ((300, 200), (300, 200), (120, 80)),
        ((100, 60), (100, 60), (100, 60)),
        ((2000, 10), (500, 2), (120, 1)),
        ((7, 1999), (2, 500), (1, 120)),
        ((1, 1), (1, 1), (1, 1)),
    ],
)
def test_sizes_are_capped_never_upscaled(
    size: tuple[int, int], display: tuple[int, int], thumb: tuple[int, int]
) -> None:
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 140, 200)).save(buf, "PNG")
    out = render_bytes(buf.getvalue(), SMALL)
    assert (out.result.display_width, out.result.display_height) == display
    assert (out.result.thumb_width, out.result.thumb_height) == thumb
    assert_clean_jpeg(out.display, display)
    assert_clean_jpeg(out.thumb, thumb)


def _stripes(size: tuple[int, int], mode: str) -> bytes:
    """A lossless PNG of one-pixel black and white columns: the worst case for aliasing."""
    columns = (np.arange(size[0]) % 2 * 255).astype(np.uint8)
    pixels = np.broadcast_to(columns, (size[1], size[0]))
    image = Image.fromarray(np.ascontiguousarray(pixels)).convert(mode)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
@pytest.mark.parametrize(
    ("size", "display"),
    [
        ((1000, 600), (500, 300)),  # exactly 2x: bilinear alone
        ((1250, 750), (500, 300)),  # 2.5x: box-reduce by 2, then bilinear 1.25x
        ((4000, 2400), (500, 300)),  # 8x: box-reduce by 8
    ],
)
def test_display_resize_does_not_alias(
    mode: str, size: tuple[int, int], display: tuple[int, int]
) -> None:
    """Alternating one-pixel columns must average to an even grey when the reduction is 2x or
    more: bilinear sampling of a 2x2 neighbourhood at a larger step (a missing box reduction)
    gives stripes of black and white instead (standard deviation ~70)."""
    out = render_bytes(_stripes(size, mode), SMALL)
    image = assert_clean_jpeg(out.display, display)
    grey = np.asarray(image.convert("L"), dtype=np.float64)[2:-2, 2:-2]  # edges may differ
    assert abs(grey.mean() - 127.5) < 6
    assert grey.std() < 12


def test_display_resize_keeps_the_picture() -> None:
    """The resized display of a real photo stays close to a Lanczos reference of the same size,
    in colour and in detail, on both paths (OpenCV bilinear for RGB, Pillow for RGBA). Most of
    the ~3.5 levels of difference is the JPEG encoding at quality 85; a swapped channel or a
    shifted picture gives tens."""
    photo = reference_photo("coffee", (1800, 1350))
    reference = photo.resize((500, 375), Image.Resampling.LANCZOS)
    for mode in ("RGB", "RGBA"):
        buf = io.BytesIO()
        photo.convert(mode).save(buf, "PNG")
        out = render_bytes(buf.getvalue(), SMALL)
        display = assert_clean_jpeg(out.display, (500, 375))
        assert _mean_abs_diff(display, reference) < 4.5, mode


_EXPECTED_ERROR: dict[int, type[ApiError]] = {
    413: ImageTooLarge,
    415: UnsupportedImageType,
    422: CorruptImage,
}


@pytest.mark.parametrize("name", sorted(HOSTILE_EXPECTED_STATUS))
def test_hostile_file_gets_its_specific_error(name: str) -> None:
    status = HOSTILE_EXPECTED_STATUS[name]
    with pytest.raises(_EXPECTED_ERROR[status]) as caught:
        render_bytes(hostile_corpus()[name], RenditionSpec())
    assert caught.value.status == status


def test_refused_types_never_reach_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pillow(*args: object, **kwargs: object) -> Image.Image:
        raise AssertionError("Pillow was asked to open a refused file")

    monkeypatch.setattr(Image, "open", no_pillow)
    for name, status in HOSTILE_EXPECTED_STATUS.items():
        if status == 415 or name == "empty.jpg":
            with pytest.raises((UnsupportedImageType, CorruptImage)):
                render_bytes(hostile_corpus()[name], RenditionSpec())


@pytest.mark.parametrize("name", ["bomb_30000x30000.png", "bomb_65000x65000.jpg"])
def test_bombs_are_refused_from_the_header_without_decoding(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decoding(*args: object) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", no_decoding, raising=False)
    with pytest.raises(ImageTooLarge) as caught:
        render_bytes(hostile_corpus()[name], RenditionSpec())
    assert "the limit is 100,000,000 pixels" in caught.value.message
    assert "900,000,000" in caught.value.message or "4,225,000,000" in caught.value.message


def test_pixel_limit_comes_from_the_spec() -> None:
    data = make_image_bytes("png", size=(200, 150))
    render_bytes(data, RenditionSpec(max_pixels=200 * 150))
    with pytest.raises(ImageTooLarge, match="30,000 pixels; the limit is 29,999"):
        render_bytes(data, RenditionSpec(max_pixels=200 * 150 - 1))


def test_gif_frame_larger_than_its_screen_is_counted() -> None:
    gif = (
        b"GIF89a"
        + struct.pack("<HHBBB", 16, 16, 0x80, 0, 0)
        + b"\0\0\0\xff\xff\xff"
        + b"\x2c"
        + struct.pack("<HHHHB", 0, 0, 20000, 20000, 0)
        + b"\x02\x02\x4c\x01\x00\x3b"
    )
    with pytest.raises(ImageTooLarge, match="400,000,000 pixels"):
        render_bytes(gif, RenditionSpec(max_pixels=1_000_000))


@pytest.mark.parametrize("pixels", [150, 250])
def test_pillow_own_bomb_check_maps_to_image_too_large(pixels: int) -> None:
    # Defence in depth: checks Pillow makes while decoding honour the spec's limit. Pillow warns
    # above the limit (150 > 100) and raises above twice the limit (250 > 200).
    data = make_image_bytes("png", size=(pixels, 1))
    with (
        pytest.raises(ImageTooLarge),
        renditions_module._decoding(sniff(data), limit=100),
    ):
        Image.open(io.BytesIO(data))
    assert Image.MAX_IMAGE_PIXELS != 100  # restored


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_files_are_corrupt(fmt: str) -> None:
    data = make_image_bytes(fmt, size=(320, 240))
    for keep in (0.9, 0.5, 0.2):
        with pytest.raises(CorruptImage) as caught:
            render_bytes(data[: int(len(data) * keep)], SMALL)
        assert (caught.value.status, caught.value.code) == (422, "corrupt_image")


def test_render_file_replaces_previous_renditions(tmp_path: Path) -> None:
    source = tmp_path / "upload"
    source.write_bytes(make_image_bytes("jpeg", size=(640, 480)))
    out = tmp_path / "out"
    out.mkdir()
    (out / "display.jpg").write_bytes(b"stale")
    result = render_file(source, out, SMALL)
    assert isinstance(result, RenditionResult)
    assert sorted(p.name for p in out.iterdir()) == ["display.jpg", "thumb.jpg"]
    assert_clean_jpeg((out / "display.jpg").read_bytes(), (500, 375))


def test_render_file_makes_the_upload_and_both_renditions_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The web process no longer fsyncs the original before publishing the staging folder:
    # the worker's render_file must sync it, both renditions and the folder's entries.
    staging = tmp_path / "staging"
    staging.mkdir()
    source = staging / "original"
    source.write_bytes(make_image_bytes("jpeg", size=(640, 480)))
    synced: list[Path] = []
    threads: set[int] = set()
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        threads.add(threading.get_ident())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    render_file(source, staging, SMALL)
    assert sorted(p.name for p in staging.iterdir()) == ["display.jpg", "original", "thumb.jpg"]
    # In any order: nothing reads the folder before all four are done, and a crash before
    # then leaves a staging folder without a row, which recovery removes.
    assert sorted(synced) == sorted(
        [source, staging / "display.jpg", staging / "thumb.jpg", staging]
    )
    assert len(threads) > 1  # issued together, not one after another


def test_temporary_staging_writes_every_file_and_syncs_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An object store's staging folder is uploaded and then removed: an fsync buys nothing.
    folder = tmp_path / "key"
    data = make_image_bytes("jpeg", size=(640, 480))
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    temporary = stage_and_render_temporary(data, folder, SMALL)
    assert synced == []
    assert sorted(p.name for p in folder.iterdir()) == ["display.jpg", "original", "thumb.jpg"]
    assert (folder / "original").read_bytes() == data
    assert_clean_jpeg((folder / "display.jpg").read_bytes(), (500, 375))
    durable = stage_and_render(data, tmp_path / "other", SMALL)
    assert len(synced) == 4  # the same job for a local folder syncs all four
    assert dataclasses.replace(temporary, render_seconds=0) == dataclasses.replace(
        durable, render_seconds=0
    )


def test_spec_is_validated() -> None:
    with pytest.raises(ValueError):
        RenditionSpec(display_max_px=0)
    with pytest.raises(ValueError):
        RenditionSpec(thumb_quality=101)
