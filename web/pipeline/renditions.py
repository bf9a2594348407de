"""Renditions of one uploaded photo: the synchronous work done inside a worker process.

From the uploaded bytes we make two sRGB JPEGs without any metadata: ``display.jpg`` (longest side
at most :attr:`RenditionSpec.display_max_px`) and ``thumb.jpg`` (at most
:attr:`RenditionSpec.thumb_max_px`), both upright and never upscaled.

The order of the steps is chosen for speed (the measurements are in ``bench/README.md``):

1. :func:`~web.pipeline.formats.sniff` the type from the bytes; Pillow may then use only that
   plugin.
2. Open (header only), refuse too many pixels, read the EXIF orientation.
3. For JPEG, ask libjpeg for a DCT-scaled decode (``Image.draft``) at the largest power-of-two
   reduction that still covers the display size. The request is made in stored orientation, so a
   portrait phone photo (stored landscape, Orientation 6) is scaled correctly.
4. Resize once to the display size in stored orientation (OpenCV's vectorised bilinear resampler
   for the last factor of at most 2, Pillow's box reduction for any whole factor before it),
   then flatten transparency onto white,
   convert to sRGB from an embedded ICC profile, and rotate: each of these is per-pixel work, so
   doing it on the 2 MP rendition rather than the 12 MP original is several times cheaper.
5. Encode; then the thumbnail is made from the finished display image, not from the original.

The full-resolution download, ``full.jpg``, is made later and only on request
(:func:`render_full_file`): the same steps without any scaling, so the same upright, sRGB,
metadata-free result at the original's pixel size.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import io
import os
import secrets
import stat
import struct
import time
import warnings
import zlib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import pillow_heif
from PIL import ExifTags, Image, ImageCms

from web.pipeline.formats import (
    CorruptImage,
    ImageTooCostlyToDecode,
    ImageTooLarge,
    ImageType,
    check_pixels,
    png_bit_depth,
    sniff,
)
from web.pipeline.location import strip_location
from web.storage import fsync_directory, stage_upload

DISPLAY_NAME = "display.jpg"
THUMB_NAME = "thumb.jpg"
FULL_NAME = "full.jpg"


@dataclass(frozen=True)
class RenditionSpec:
    """What to make. Picklable: it travels to the worker with each job.

    :param display_max_px: longest side of ``display.jpg``, pixels.
    :param thumb_max_px: longest side of ``thumb.jpg``, pixels.
    :param max_pixels: refuse originals with more than this many pixels (width * height).
    :param max_decode_bytes: refuse originals whose decoded samples (pixels as decoded, times
        channels, times bytes per sample as stored) exceed this many bytes; a 100 MP 8-bit
        colour photo is 300 MB, a 64 MP 16-bit RGBA PNG 512 MB.
    :param display_quality: JPEG quality of ``display.jpg``, 1-100 (Pillow's scale).
    :param thumb_quality: JPEG quality of ``thumb.jpg``, 1-100.
    :param full_quality: JPEG quality of the full-resolution download ``full.jpg``, 1-100.
    :param keep_location: keep the original's GPS tags; when false (the default) the stored
        original has them blanked, without re-encoding (:mod:`web.pipeline.location`).
    :raises ValueError: on a size or count below 1 or a quality outside 1-100.
    """

    display_max_px: int = 1600
    thumb_max_px: int = 400
    max_pixels: int = 100_000_000
    max_decode_bytes: int = 320 * 2**20
    display_quality: int = 85
    thumb_quality: int = 80
    full_quality: int = 92
    keep_location: bool = False

    def __post_init__(self) -> None:
        if min(self.display_max_px, self.thumb_max_px, self.max_pixels, self.max_decode_bytes) < 1:
            raise ValueError("rendition sizes and the pixel limit must be at least 1")
        qualities = (self.display_quality, self.thumb_quality, self.full_quality)
        if not all(1 <= quality <= 100 for quality in qualities):
            raise ValueError("JPEG qualities must be within 1-100")


@dataclass(frozen=True)
class RenditionResult:
    """What was made from one original.

    :param format: type of the original: ``"jpeg" | "png" | "webp" | "gif" | "heif" | "avif"``.
    :param mime_type: of the original, e.g. ``"image/jpeg"``, ``"image/heic"``.
    :param original_width: of the original after EXIF orientation, pixels.
    :param original_height: of the original after EXIF orientation, pixels.
    :param display_width: of ``display.jpg`` as written, pixels.
    :param display_height: of ``display.jpg`` as written, pixels.
    :param thumb_width: of ``thumb.jpg`` as written, pixels.
    :param thumb_height: of ``thumb.jpg`` as written, pixels.
    :param render_seconds: wall time spent in the worker (reading, rendering, writing), seconds.
    """

    format: str
    mime_type: str
    original_width: int
    original_height: int
    display_width: int
    display_height: int
    thumb_width: int
    thumb_height: int
    render_seconds: float


@dataclass(frozen=True)
class Renditions:
    """The encoded renditions of one original, before they are written.

    :param result: sizes and timing (``render_seconds`` covers decoding and encoding only).
    :param display: ``display.jpg``'s bytes.
    :param thumb: ``thumb.jpg``'s bytes.
    """

    result: RenditionResult
    display: bytes
    thumb: bytes


@dataclass(frozen=True)
class FullRenditionResult:
    """What :func:`render_full_file` made: ``full.jpg``, the photo at its original pixel size.

    :param width: of ``full.jpg`` (the original after EXIF orientation), pixels.
    :param height: of ``full.jpg``, pixels.
    :param file_bytes: size of ``full.jpg``, bytes.
    :param render_seconds: wall time spent in the worker (reading, rendering, writing), seconds.
    """

    width: int
    height: int
    file_bytes: int
    render_seconds: float


# Pillow's transposition that turns stored pixels upright, per EXIF Orientation value (CIPA
# DC-008-2019 "Exif 2.32", tag 0x0112). The same table as PIL.ImageOps.exif_transpose.
_UPRIGHT: Mapping[int, Image.Transpose] = MappingProxyType(
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

# What Pillow and its plugins raise on damaged input. The plugins are not consistent (a broken
# PNG chunk raises SyntaxError, a short GIF raises EOFError or IndexError, libheif's errors are
# RuntimeError), so every one of these from the decoding step means "corrupt", never a 500;
# tests/pipeline/test_fuzz.py holds the decoder to that.
_DECODE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    RuntimeError,
    struct.error,
    zlib.error,
)

# The display resize: OpenCV's vectorised bilinear, several times faster than Pillow's for the
# same quality (docs/decisions/0008-rendition-resampling.md). It samples 2x2 neighbours, so it
# takes a reduction of at most 2x; a larger one is first box-reduced by its whole factor with
# Pillow's ``reduce``. Only 8-bit L and RGB go through OpenCV: Pillow premultiplies alpha before
# resampling RGBA, which a plain per-channel resize would not.
_DISPLAY_MAX_BILINEAR_FACTOR = 2.0
_DISPLAY_FILTER = Image.Resampling.BILINEAR
_OPENCV_MODES = frozenset({"L", "RGB"})
# The thumbnail is a ~4x reduction of the finished display image: box-reduce by the whole
# factor, then bicubic for any remainder (docs/decisions/0008-rendition-resampling.md).
_THUMB_FILTER = Image.Resampling.BICUBIC
_THUMB_REDUCING_GAP = 1.0

_WHITE = (255, 255, 255)

# glibc mallopt parameter numbers (<malloc.h>) and the values we set; see _tune_malloc.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc's ceiling on 64-bit, DEFAULT_MMAP_THRESHOLD_MAX in malloc/malloc.c.
_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
_TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024


def init_worker(tune_malloc: bool = True) -> None:
    """Worker initializer: register the HEIF opener, tune malloc, warm the code paths.

    :param tune_malloc: raise glibc's mmap and trim thresholds (see :func:`_tune_malloc`).
    """
    _register_heif()
    import cv2  # see _resize_display for why OpenCV is imported where it is used

    # One job per worker and one worker per core: OpenCV's own thread pool would oversubscribe.
    cv2.setNumThreads(1)
    if tune_malloc:
        _tune_malloc()
    warm_up()


def warm_up() -> int:
    """Render a tiny JPEG so that a worker's first real job does not pay for lazy imports.

    :returns: this process's id, to tell workers apart in tests and benchmarks.
    """
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buf, "JPEG")
    render_bytes(buf.getvalue(), RenditionSpec(display_max_px=32, thumb_max_px=8))
    return os.getpid()


def _register_heif() -> None:
    if "HEIF" not in Image.ID:
        # Thumbnails, depth maps and auxiliary images are never used; skip parsing them.
        pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def _tune_malloc() -> None:
    """Keep freed image buffers in the heap instead of returning them to the kernel.

    With glibc's defaults, image buffers of several MB are mmap'ed and unmapped for every image,
    which then page-faults them afresh (docs/decisions/0011-worker-malloc-tuning.md).
    Raising M_MMAP_THRESHOLD to its maximum serves Pillow's blocks (16 MB at most) from the heap,
    and raising M_TRIM_THRESHOLD keeps that heap mapped between images. No-op without glibc.
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    try:
        mallopt = ctypes.CDLL(libc_name).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)


def render_file(
    source: Path, out_dir: Path, spec: RenditionSpec, *, durable: bool = True
) -> RenditionResult:
    """Read ``source``, write ``out_dir/display.jpg`` and ``out_dir/thumb.jpg``, blank the
    location tags of ``source`` in place unless ``spec.keep_location``, and make all three
    durable (unless ``durable`` is False). This is the job the pool sends to a worker.

    ``out_dir`` is the upload's private staging folder, which the caller publishes with one
    rename once this returns (``web.storage``): nobody reads it meanwhile, so the renditions
    are written in place, without the temporary name and rename a shared folder would need.
    On return, ``source`` (fsynced here, in the worker, instead of in the web process), both
    renditions and ``out_dir``'s entries survive a power cut; ``source``'s entry does too when it
    lies in ``out_dir``, as an upload's original does.

    :param source: the uploaded file.
    :param out_dir: an existing directory for the two renditions.
    :param durable: False: nothing is fsynced, for files that are temporary copies (an object
        store's staging: uploaded, then removed; docs/decisions/0028-object-store-worker-cost.md).
    :returns: the result; ``render_seconds`` covers reading, rendering and writing.
    :raises UnsupportedImageType, CorruptImage, ImageTooLarge: see :func:`render_bytes`.
    :raises OSError: if ``source`` cannot be read or the renditions cannot be written.
    """
    started = time.perf_counter()
    with contextlib.ExitStack() as files:
        # Read-only: a read-write open of a pipe would hold its write end and never see EOF.
        original = files.enter_context(open(source, "rb"))
        data = original.read()
        renditions = render_bytes(data, spec)
        if not spec.keep_location and stat.S_ISREG(os.fstat(original.fileno()).st_mode):
            stripped = strip_location(data)
            if stripped is not data:  # same length: overwritten in place, synced below
                with open(source, "r+b") as rewrite:
                    rewrite.write(stripped)
        display = files.enter_context(open(out_dir / DISPLAY_NAME, "wb"))
        display.write(renditions.display)
        thumb = files.enter_context(open(out_dir / THUMB_NAME, "wb"))
        thumb.write(renditions.thumb)
        if not durable:
            return dataclasses.replace(
                renditions.result, render_seconds=time.perf_counter() - started
            )
        display.flush()
        thumb.flush()
        folder = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
        files.callback(os.close, folder)
        to_sync = [display.fileno(), thumb.fileno(), folder]
        if stat.S_ISREG(os.fstat(original.fileno()).st_mode):  # a pipe has nothing to sync
            to_sync.append(original.fileno())
        fsync_together(to_sync)
    return dataclasses.replace(renditions.result, render_seconds=time.perf_counter() - started)


def fsync_together(descriptors: list[int]) -> None:
    """fsync every descriptor, all at once, and return when all are durable (blocking).

    Each fsync waits for its own device writes; issued from parallel threads, the disk takes
    them together instead of one after another (docs/decisions/0012-fsync-together.md).

    :param descriptors: open file or directory descriptors.
    :raises OSError: the first fsync error, after every fsync has finished.
    """
    first, *others = descriptors
    pending = [_sync_threads().submit(os.fsync, fd) for fd in others]
    try:
        os.fsync(first)
    finally:
        errors = [error for future in pending if (error := future.exception()) is not None]
    if errors:
        raise errors[0]


@lru_cache(maxsize=1)
def _sync_threads() -> ThreadPoolExecutor:
    # Made on first use, in a worker: the fork server that preloads this module stays
    # single-threaded, as forking requires.
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="fsync")


def stage_and_render(upload: Path | bytes, folder: Path, spec: RenditionSpec) -> RenditionResult:
    """Stage an upload and render it, in one worker job: :func:`web.storage.stage_upload` into
    ``folder``, then :func:`render_file` of its original into the same folder.

    :param upload: the uploaded file's bytes, or the path of the spilled request body.
    :param folder: the new image's staging folder (made here).
    :returns: as :func:`render_file`; on return the original, both renditions and the
        folder's entries are durable.
    :raises UnsupportedImageType, CorruptImage, ImageTooLarge, OSError: as :func:`render_file`.
    """
    return render_file(stage_upload(upload, folder), folder, spec)


def stage_and_render_temporary(
    upload: Path | bytes, folder: Path, spec: RenditionSpec
) -> RenditionResult:
    """:func:`stage_and_render` with nothing fsynced: for a folder whose files are copied
    elsewhere (an object store's PUTs) and then removed, where a crash loses nothing that an
    fsync would have kept (docs/decisions/0028-object-store-worker-cost.md).

    :param upload: as :func:`stage_and_render`.
    :param folder: as :func:`stage_and_render`.
    :returns: as :func:`render_file`; the files are written (readable by the caller), not
        durable.
    :raises UnsupportedImageType, CorruptImage, ImageTooLarge, OSError: as :func:`render_file`.
    """
    return render_file(stage_upload(upload, folder), folder, spec, durable=False)


def render_bytes(data: bytes, spec: RenditionSpec) -> Renditions:
    """Make both renditions of the photo in ``data``; the decoder's synchronous entry point.

    :param data: the whole uploaded file.
    :param spec: sizes, qualities and the pixel limit.
    :returns: the JPEG bytes of both renditions and their sizes.
    :raises UnsupportedImageType: (415) not an accepted photo type, decided from the bytes.
    :raises CorruptImage: (422) empty, truncated or undecodable.
    :raises ImageTooLarge: (413) more than ``spec.max_pixels`` pixels, checked from the header
        before any pixel is decoded.
    """
    started = time.perf_counter()
    decoded = _decode(data, spec, draft_max_px=spec.display_max_px)
    upright_size = decoded.upright_size
    display_size = fit(upright_size, spec.display_max_px)
    stored_target = display_size[::-1] if decoded.orientation >= 5 else display_size

    display = _resize_display(decoded.image, stored_target)
    display = _upright_srgb(display, decoded.icc_profile, decoded.orientation)

    thumb_w, thumb_h = fit(upright_size, spec.thumb_max_px)
    thumb_size = (min(thumb_w, display.width), min(thumb_h, display.height))
    thumb = _resize(display, thumb_size, _THUMB_FILTER, _THUMB_REDUCING_GAP)

    display_jpeg = _encode(display, spec.display_quality, optimize=False)
    # Huffman optimisation only where it is cheap or pays back: thumbnails are fetched in
    # screenfuls (docs/decisions/0009-jpeg-encoding-options.md).
    thumb_jpeg = _encode(thumb, spec.thumb_quality, optimize=True)
    result = RenditionResult(
        format=decoded.kind.format,
        mime_type=decoded.kind.mime_type,
        original_width=upright_size[0],
        original_height=upright_size[1],
        display_width=display.width,
        display_height=display.height,
        thumb_width=thumb.width,
        thumb_height=thumb.height,
        render_seconds=time.perf_counter() - started,
    )
    return Renditions(result=result, display=display_jpeg, thumb=thumb_jpeg)


def render_full_file(source: Path, out_dir: Path, spec: RenditionSpec) -> FullRenditionResult:
    """Read ``source`` and write ``out_dir/full.jpg`` durably: the photo at full resolution.

    Written like :func:`render_file`'s renditions (temporary name, fsync, rename, directory
    fsync), so a reader never sees a partial file and two workers writing the same ``full.jpg``
    at once both leave a whole one. This is the job the pool sends to a worker.

    :param source: the original upload.
    :param out_dir: an existing directory (the image's media folder).
    :param spec: ``max_pixels`` and ``full_quality`` are used.
    :returns: the size of what was written; ``render_seconds`` covers reading and writing too.
    :raises UnsupportedImageType, CorruptImage, ImageTooLarge: see :func:`render_full_bytes`.
    :raises OSError: if ``source`` cannot be read or ``out_dir`` written (e.g. FileNotFoundError
        once the image was deleted).
    """
    started = time.perf_counter()
    jpeg, (width, height) = render_full_bytes(source.read_bytes(), spec)
    _write_durably(out_dir / FULL_NAME, jpeg)
    fsync_directory(out_dir)
    return FullRenditionResult(
        width=width,
        height=height,
        file_bytes=len(jpeg),
        render_seconds=time.perf_counter() - started,
    )


def render_full_bytes(data: bytes, spec: RenditionSpec) -> tuple[bytes, tuple[int, int]]:
    """The photo in ``data`` at its full pixel size as an upright sRGB JPEG with no metadata.

    The same treatment as the display rendition (EXIF orientation applied, converted to sRGB
    from an embedded ICC profile, transparency flattened onto white, no EXIF, GPS, XMP, ICC or
    comment written) without scaling, at JPEG quality ``spec.full_quality``.

    :param data: the whole original file.
    :param spec: ``max_pixels`` and ``full_quality`` are used.
    :returns: ``(jpeg_bytes, (width, height))``, the size in pixels after orientation.
    :raises UnsupportedImageType: (415) not an accepted photo type.
    :raises CorruptImage: (422) undecodable.
    :raises ImageTooLarge: (413) more than ``spec.max_pixels`` pixels (from the header).
    """
    decoded = _decode(data, spec, draft_max_px=None)
    image = _upright_srgb(decoded.image, decoded.icc_profile, decoded.orientation)
    # Optimised Huffman tables for a file made once and downloaded many times
    # (docs/decisions/0009-jpeg-encoding-options.md).
    return _encode(image, spec.full_quality, optimize=True), image.size


def fit(size: tuple[int, int], max_px: int) -> tuple[int, int]:
    """``size`` scaled so its longest side is at most ``max_px``, keeping the aspect ratio.

    Never enlarges; each side is at least 1 pixel.

    :param size: ``(width, height)``, pixels.
    :param max_px: longest side allowed, pixels.
    :returns: ``(width, height)``, pixels.
    """
    width, height = size
    longest = max(width, height)
    if longest <= max_px:
        return size
    return (
        min(max_px, max(1, round(width * max_px / longest))),
        min(max_px, max(1, round(height * max_px / longest))),
    )


@dataclass(frozen=True)
class _Decoded:
    """A decoded original, still in stored orientation.

    :param kind: its sniffed type.
    :param image: its pixels in a working mode (see :func:`_working_mode`).
    :param orientation: EXIF Orientation to apply, 1-8.
    :param icc_profile: its embedded ICC profile, if any.
    :param upright_size: ``(width, height)`` of the whole original after orientation, pixels
        (``image`` may be smaller: see ``draft_max_px``).
    """

    kind: ImageType
    image: Image.Image
    orientation: int
    icc_profile: bytes | None
    upright_size: tuple[int, int]


def _decode(data: bytes, spec: RenditionSpec, *, draft_max_px: int | None) -> _Decoded:
    """Sniff, open, check the pixel count, read the orientation, check the decoding cost and
    decode ``data`` (``spec.max_pixels`` and ``spec.max_decode_bytes`` are used).

    :param draft_max_px: for JPEG, let libjpeg decode at the largest power-of-two reduction
        that still covers this longest side (upright); None decodes every pixel.
    :raises UnsupportedImageType, CorruptImage, ImageTooLarge: see :func:`render_bytes`.
    """
    kind = sniff(data)
    _register_heif()
    max_pixels = spec.max_pixels
    with _decoding(kind, max_pixels):
        image = _open(data, kind, max_pixels)
        if kind.format != "jpeg":
            # Before the orientation: Pillow's PNG reader decodes every pixel to look for an
            # eXIf chunk after the image data. A JPEG is checked after its draft below.
            _check_decode_cost(image, kind, data, spec.max_decode_bytes)
        orientation = _orientation(image)
        stored_w, stored_h = image.size
        transposed = orientation >= 5
        upright_size = (stored_h, stored_w) if transposed else (stored_w, stored_h)
        if draft_max_px is not None and kind.format == "jpeg":
            # The request is made in stored orientation, so a portrait phone photo stored
            # landscape is scaled correctly.
            target = fit(upright_size, draft_max_px)
            image.draft("RGB", target[::-1] if transposed else target)
        if kind.format == "jpeg":
            _check_decode_cost(image, kind, data, spec.max_decode_bytes)
        image.load()
        icc_profile = image.info.get("icc_profile")
        image = _working_mode(image)
    return _Decoded(
        kind=kind,
        image=image,
        orientation=orientation,
        icc_profile=icc_profile if isinstance(icc_profile, bytes) else None,
        upright_size=upright_size,
    )


def _upright_srgb(image: Image.Image, icc_profile: bytes | None, orientation: int) -> Image.Image:
    """``image`` flattened onto white if it has alpha, as sRGB RGB, turned upright.

    Per-pixel work, so callers scale down first where they can.
    """
    if image.mode == "RGBA":
        image = _flatten(image)
    image = _to_srgb(image, icc_profile)
    if orientation != 1:
        image = image.transpose(_UPRIGHT[orientation])
    return image


@contextlib.contextmanager
def _decoding(kind: ImageType, limit: int) -> Iterator[None]:
    """Run the decoding step: Pillow's errors become ours, its limit is ``limit``.

    - Decoding errors (see ``_DECODE_ERRORS``) become :class:`CorruptImage`.
    - Pillow's own decompression-bomb checks, made while decoding (e.g. a GIF frame larger
      than its screen), enforce ``limit``: Pillow warns above ``MAX_IMAGE_PIXELS`` and raises
      above twice that, and both become :class:`ImageTooLarge`.
    - Pillow's warnings about damaged metadata (bad EXIF, short chunks) are dropped: the photo
      is still usable, and one warning per upload is noise. Nothing else is silenced.

    The previous Pillow limit is restored, as this also runs in-process in tests.
    """
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(0, limit) from exc
    except _DECODE_ERRORS as exc:
        raise CorruptImage(_kind_name(kind)) from exc
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _kind_name(kind: ImageType) -> str:
    return {"webp": "WebP", "heif": "HEIF"}.get(kind.format, kind.pillow_format)


def _open(data: bytes, kind: ImageType, limit: int) -> Image.Image:
    """Open ``data`` with ``kind``'s plugin only, reading just the header, and check its size.

    Pillow's own limit is lifted for the open so that :func:`check_pixels` can report the pixel
    count; no pixel buffer is allocated before it passes.
    """
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        image = Image.open(io.BytesIO(data), formats=[kind.pillow_format])
    finally:
        Image.MAX_IMAGE_PIXELS = previous
    check_pixels(image.width, image.height, limit)
    if image.width < 1 or image.height < 1:
        raise CorruptImage(_kind_name(kind))
    return image


# Bytes per sample of Pillow modes whose samples are wider than a byte; every other mode we open
# (L, LA, P, PA, RGB, RGBA, CMYK, YCbCr, 1) holds one byte per band.
_MODE_SAMPLE_BYTES: Mapping[str, int] = MappingProxyType(
    {"I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "I": 4, "F": 4}
)


def _check_decode_cost(image: Image.Image, kind: ImageType, data: bytes, limit: int) -> None:
    """Refuse ``image`` (opened, not decoded; after any ``draft``) if decoding it would fill
    more than ``limit`` bytes: pixels times channels times bytes per stored sample.

    The pixel limit alone lets through 100 MP at any depth, and Pillow hides the depth: a
    16-bit RGBA PNG opens as mode RGBA, but its decoder inflates 8 bytes per pixel and then
    narrows them. The stored depth comes from the PNG header, or pillow-heif's ``bit_depth``
    (10 and 12-bit HEIC, AVIF). A palette image is counted at the RGB(A) it becomes.

    :raises ImageTooCostlyToDecode: (413) over ``limit``.
    """
    mode = image.mode
    channels = len(image.getbands())
    bits = 8 * _MODE_SAMPLE_BYTES.get(mode, 1)
    if kind.format == "png":
        bits = max(bits, png_bit_depth(data))
    depth = image.info.get("bit_depth")
    if isinstance(depth, int):
        bits = max(bits, depth)
    sample_bytes = (bits + 7) // 8
    # What the working mode holds afterwards: palette images become RGB or RGBA.
    working = 4 if mode in ("P", "PA") and "transparency" in image.info else 3
    per_pixel = max(channels * sample_bytes, working if mode in ("P", "PA") else 0)
    cost = image.width * image.height * per_pixel
    if cost > limit:
        raise ImageTooCostlyToDecode(image.width, image.height, bits, channels, cost, limit)


def _orientation(image: Image.Image) -> int:
    """EXIF Orientation (1-8); 1 when absent, unreadable or out of range.

    HEIF needs no special case: pillow-heif applies the container's rotation while decoding and
    resets the EXIF value to 1. Pillow's AVIF plugin does the opposite (it reports the container's
    rotation as EXIF orientation), which this handles too.
    """
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except _DECODE_ERRORS:
        # Damaged EXIF is common in edited photos and does not make the pixels unusable.
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _working_mode(image: Image.Image) -> Image.Image:
    """``image`` in L, RGB, RGBA or CMYK: the modes the rest of the pipeline handles.

    Palette and 1-bit images become RGB(A)/L; anything with transparency (an alpha band, a tRNS
    colour or index) becomes RGBA; 16-bit grey becomes 8-bit L. CMYK is kept so that a CMYK ICC
    profile can still be applied.
    """
    mode = image.mode
    if mode in ("RGB", "L") and "transparency" not in image.info:
        return image
    if mode in ("RGBA", "CMYK"):
        return image
    if mode.startswith("I;16") or mode == "I":
        # Pillow's I;16 -> L conversion clips at 255 instead of scaling; 65535 / 257 = 255.
        return image.convert("I").point(lambda value: value / 257).convert("L")
    if mode == "1":
        return image.convert("L")
    if image.has_transparency_data:
        return image.convert("RGBA")
    return image.convert("RGB")


def _resize(
    image: Image.Image, size: tuple[int, int], resample: Image.Resampling, reducing_gap: float
) -> Image.Image:
    if image.size == size:
        return image
    return image.resize(size, resample, reducing_gap=reducing_gap)


def _resize_display(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` scaled down to ``size`` (pixels, same aspect ratio, never larger than
    ``image``): box-reduced by any whole factor above 2x, then bilinear for the rest (see
    ``_DISPLAY_MAX_BILINEAR_FACTOR`` for why and what it costs)."""
    if image.size == size:
        return image
    factor = min(image.width / size[0], image.height / size[1])
    if factor > _DISPLAY_MAX_BILINEAR_FACTOR:
        whole = int(factor)
        image = image.reduce(whole)
        if image.size == size:
            return image
    if image.mode not in _OPENCV_MODES:
        return image.resize(size, _DISPLAY_FILTER)
    # Imported here: the web process imports this module for its types and never loads them
    # (docs/decisions/0007-forkserver-preloads-numpy-and-opencv.md).
    import cv2
    import numpy as np

    resized = cv2.resize(np.asarray(image), size, interpolation=cv2.INTER_LINEAR)
    return Image.fromarray(resized)


def _flatten(image: Image.Image) -> Image.Image:
    """Composite an RGBA ``image`` onto white, as JPEG has no transparency."""
    background = Image.new("RGB", image.size, _WHITE)
    background.paste(image, mask=image.getchannel("A"))
    return background


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """``image`` as sRGB RGB, converted from ``icc_profile`` when it is usable and not sRGB."""
    transform = _srgb_transform(icc_profile, image.mode) if icc_profile else None
    if transform is None:
        return image if image.mode == "RGB" else image.convert("RGB")
    if image.mode == "RGB":
        transform.apply_in_place(image)
        return image
    return transform.apply(image)


@lru_cache(maxsize=16)
def _srgb_transform(icc_profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A cached transform from ``icc_profile`` to sRGB for ``mode`` images, or ``None``.

    ``None`` when the profile is sRGB already (converting would be costly work for nothing),
    when it does not match the image's colour space, or when it is unreadable: a bad profile is
    a reason to show the pixels as they are, not to refuse the photo. Phones embed one of a
    handful of profiles (sRGB, Display P3), so a small cache per worker process saves
    rebuilding the transform for every photo
    (docs/decisions/0010-srgb-conversion-only-when-needed.md).
    """
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        space = source.profile.xcolor_space.strip()
        if space != {"L": "GRAY", "RGB": "RGB", "CMYK": "CMYK"}.get(mode):
            return None
        if _is_srgb(source):
            return None
        return ImageCms.buildTransform(
            source,
            ImageCms.createProfile("sRGB"),
            mode,
            "RGB",
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _is_srgb(profile: ImageCms.ImageCmsProfile) -> bool:
    """Whether ``profile`` is an sRGB matrix/TRC profile (name and primaries both say so)."""
    core = profile.profile
    if not core.is_matrix_shaper or "srgb" not in (core.profile_description or "").lower():
        return False
    reference = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).profile
    pairs = (
        (core.red_colorant, reference.red_colorant),
        (core.green_colorant, reference.green_colorant),
        (core.blue_colorant, reference.blue_colorant),
    )
    # 0.002 in XYZ admits the rounding of published sRGB profiles (HP/Microsoft, ICC v4 sRGB).
    return all(
        got is not None
        and want is not None
        and all(abs(a - b) < 0.002 for a, b in zip(got[0], want[0], strict=True))
        for got, want in pairs
    )


def _encode(image: Image.Image, quality: int, *, optimize: bool) -> bytes:
    """Baseline 4:2:0 JPEG of ``image`` with no metadata segments at all.

    Pillow's JPEG writer copies ``image.info["comment"]`` by default, and resize/transpose copy
    ``info`` from the original, so it is emptied first; EXIF, XMP and ICC are written only when
    passed, which they never are. Baseline, not progressive: progressive encoding costs far
    more time than the data it saves (docs/decisions/0009-jpeg-encoding-options.md).
    """
    image.info = {}
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality, optimize=optimize, subsampling="4:2:0")
    return buf.getvalue()


def _write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file, fsync, rename over ``path``.

    The temporary name is unique per call (process id and random bits), so writers on several
    replicas sharing the folder (whose worker pids may coincide in containers) never write
    into each other's temporary file; the last rename wins with a whole file.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    try:
        _write_synced(temporary, data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (created or truncated) and fsync it. Not atomic: a reader
    may see a partial file until this returns (see :func:`_write_durably`)."""
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
