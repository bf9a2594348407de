"""Property: whatever the bytes, the decoder returns renditions or one of its declared errors.

Any other exception would surface as a 500. The examples are derandomized so that every run
checks the same inputs; widen ``max_examples`` locally to search further.
"""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.photos import make_image_bytes
from web.pipeline import CorruptImage, ImageTooLarge, RenditionSpec, UnsupportedImageType
from web.pipeline.renditions import render_bytes

# A small pixel limit keeps a mutated header that claims a huge size from taking seconds.
SPEC = RenditionSpec(display_max_px=96, thumb_max_px=32, max_pixels=1_000_000)
DECLARED = (UnsupportedImageType, CorruptImage, ImageTooLarge)


def _seeds() -> list[bytes]:
    """Real photos, small, with the metadata parsers' favourite inputs (EXIF, ICC, tRNS)."""
    size = (72, 48)
    return [
        make_image_bytes("jpeg", size=size, orientation=6, icc=True),
        make_image_bytes("jpeg", size=size, mode="CMYK"),
        make_image_bytes("png", size=size, orientation=8, icc=True),
        make_image_bytes("png", size=size, mode="P", transparent=True),
        make_image_bytes("gif", size=size, transparent=True),
        make_image_bytes("webp", size=size, orientation=3),
        make_image_bytes("avif", size=size, orientation=5),
        make_image_bytes("heic", size=size, orientation=7),
    ]


def assert_renders_or_refuses(data: bytes) -> None:
    try:
        out = render_bytes(data, SPEC)
    except DECLARED:
        return
    for jpeg, size in (
        (out.display, (out.result.display_width, out.result.display_height)),
        (out.thumb, (out.result.thumb_width, out.result.thumb_height)),
    ):
        image = Image.open(io.BytesIO(jpeg))
        assert (image.format, image.size) == ("JPEG", size)
        assert max(size) <= SPEC.display_max_px


@st.composite
def mutated_photos(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_seeds())))
    for _ in range(draw(st.integers(1, 6))):
        # Half the edits land in the first 256 bytes, where the headers are.
        at = draw(st.integers(0, min(255, len(data) - 1)) | st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["set", "xor", "insert", "delete", "truncate", "repeat"]))
        if edit == "set":
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0x01]))
        elif edit == "xor":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif edit == "truncate":
            del data[max(at, 1) :]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        if not data:
            break
    return bytes(data)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=1024))
def test_arbitrary_bytes(data: bytes) -> None:
    assert_renders_or_refuses(data)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.sampled_from(_seeds()).map(lambda seed: seed[:12]) | st.binary(max_size=64))
def test_arbitrary_bytes_after_a_real_magic_number(prefix: bytes) -> None:
    assert_renders_or_refuses(prefix + bytes(range(256)))


@settings(max_examples=600, deadline=None, derandomize=True)
@given(mutated_photos())
def test_mutated_real_photos(data: bytes) -> None:
    assert_renders_or_refuses(data)
