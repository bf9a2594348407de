"""The full-resolution rendition (``full.jpg``): the whole photo, upright, sRGB, no metadata,
written atomically, made in the pool with concurrent requests for one photo sharing a job."""

from __future__ import annotations

import asyncio
import io
import multiprocessing
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.photos import (
    adobe_rgb_profile,
    assert_upright,
    hostile_corpus,
    make_image_bytes,
    make_phone_jpeg,
    reference_photo,
    transparent_region,
)
from tests.pipeline.test_pool import feed, fifo, out_dir, wait_for_reader
from tests.pipeline.test_renditions import _mean_abs_diff, assert_clean_jpeg
from web.pipeline import (
    CorruptImage,
    FullRenditionResult,
    ImageTooLarge,
    PipelineBusy,
    RenditionPool,
    RenditionSpec,
    UnsupportedImageType,
)
from web.pipeline.renditions import FULL_NAME, render_full_bytes, render_full_file

SPEC = RenditionSpec()


@pytest.fixture(scope="module")
def phone_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12 MP phone JPEG stored sideways (EXIF orientation 6), with EXIF, GPS, XMP, comment."""
    folder = tmp_path_factory.mktemp("phone")
    return make_phone_jpeg(folder / "IMG_0001.JPG", orientation=6, size=(4000, 3000), gps=True)


def _quantization_at(quality: int) -> dict[int, list[int]]:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "JPEG", quality=quality)
    with Image.open(buf) as probe:
        return dict(probe.quantization)  # type: ignore[attr-defined]


def test_12mp_phone_photo_is_upright_full_size_and_clean(phone_photo: Path, tmp_path: Path) -> None:
    with Image.open(phone_photo) as stored:
        assert stored.size == (3000, 4000)  # the premise: stored sideways
        assert stored.getexif()[0x0112] == 6
    result = render_full_file(phone_photo, tmp_path, SPEC)
    assert isinstance(result, FullRenditionResult)
    assert [p.name for p in tmp_path.iterdir()] == [FULL_NAME]  # no temporary file left
    data = (tmp_path / FULL_NAME).read_bytes()
    assert (result.width, result.height, result.file_bytes) == (4000, 3000, len(data))
    assert result.render_seconds > 0
    full = assert_clean_jpeg(data, (4000, 3000))
    assert_upright(full, reference_photo("coffee", (4000, 3000)))
    assert full.quantization == _quantization_at(92)  # type: ignore[attr-defined]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_is_applied_at_full_size(orientation: int) -> None:
    data = make_image_bytes("jpeg", size=(640, 480), name="rocket", orientation=orientation)
    jpeg, size = render_full_bytes(data, SPEC)
    assert size == (640, 480)
    assert_upright(assert_clean_jpeg(jpeg, size), reference_photo("rocket", (640, 480)))


@pytest.mark.parametrize("fmt", ["png", "webp", "gif", "heic", "avif"])
def test_other_formats_become_full_size_jpegs(fmt: str) -> None:
    data = make_image_bytes(fmt, size=(900, 600), name="chelsea")
    jpeg, size = render_full_bytes(data, SPEC)
    assert size == (900, 600)
    assert_upright(assert_clean_jpeg(jpeg, size), reference_photo("chelsea", (900, 600)))


def test_embedded_icc_profile_is_converted_to_srgb() -> None:
    data = make_image_bytes("jpeg", size=(600, 400), name="coffee", icc=True, orientation=8)
    with Image.open(io.BytesIO(data)) as stored:
        assert stored.info["icc_profile"] == adobe_rgb_profile()  # the premise
    jpeg, size = render_full_bytes(data, SPEC)
    full = assert_clean_jpeg(jpeg, size)
    assert size == (600, 400)
    reference = reference_photo("coffee", (600, 400))
    # Coarse comparison: a colour shift survives averaging, JPEG noise does not. Ignoring the
    # profile shows Adobe RGB values as sRGB, more than 6 levels off (tests/pipeline).
    assert _mean_abs_diff(full, reference, (60, 40)) < 2


def test_transparency_is_flattened_onto_white() -> None:
    size = (600, 450)
    jpeg, _ = render_full_bytes(make_image_bytes("png", size=size, transparent=True), SPEC)
    full = assert_clean_jpeg(jpeg, size)
    right = transparent_region(size)[2]
    assert np.asarray(full.crop((0, 0, right - 16, size[1]))).min() >= 245


def test_pixel_limit_is_respected(tmp_path: Path) -> None:
    data = make_image_bytes("jpeg", size=(400, 300))
    assert render_full_bytes(data, RenditionSpec(max_pixels=400 * 300))[1] == (400, 300)
    source = tmp_path / "original"
    source.write_bytes(data)
    with pytest.raises(ImageTooLarge) as caught:
        render_full_file(source, tmp_path, RenditionSpec(max_pixels=400 * 300 - 1))
    assert caught.value.status == 413
    assert not (tmp_path / FULL_NAME).exists()
    with pytest.raises(ImageTooLarge):
        render_full_bytes(hostile_corpus()["bomb_65000x65000.jpg"], SPEC)


@pytest.mark.parametrize(
    ("name", "error"),
    [("truncated.jpg", CorruptImage), ("pdf_named.jpg", UnsupportedImageType)],
)
def test_bad_originals_raise_the_pipeline_errors(name: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        render_full_bytes(hostile_corpus()[name], SPEC)


def test_quality_is_validated() -> None:
    with pytest.raises(ValueError):
        RenditionSpec(full_quality=0)
    with pytest.raises(ValueError):
        RenditionSpec(full_quality=101)


def test_an_existing_full_jpg_is_replaced_whole(tmp_path: Path) -> None:
    source = tmp_path / "original"
    source.write_bytes(make_image_bytes("jpeg", size=(640, 480)))
    out = out_dir(tmp_path, "out")
    (out / FULL_NAME).write_bytes(b"stale")
    render_full_file(source, out, SPEC)
    assert sorted(p.name for p in out.iterdir()) == [FULL_NAME]
    assert_clean_jpeg((out / FULL_NAME).read_bytes(), (640, 480))


def test_writers_in_two_processes_leave_one_whole_file(phone_photo: Path, tmp_path: Path) -> None:
    # What two replicas sharing the media folder do when both get the first request at once.
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(2, mp_context=context) as executor:
        jobs = [executor.submit(render_full_file, phone_photo, tmp_path, SPEC) for _ in range(2)]
        results = [job.result(timeout=120) for job in jobs]
    assert results[0].file_bytes == results[1].file_bytes
    assert [p.name for p in tmp_path.iterdir()] == [FULL_NAME]
    full = assert_clean_jpeg((tmp_path / FULL_NAME).read_bytes(), (4000, 3000))
    assert_upright(full, reference_photo("coffee", (4000, 3000)))


@pytest.fixture
async def pool() -> AsyncIterator[RenditionPool]:
    pool = RenditionPool(workers=1, queue_limit=2)
    await pool.start()
    yield pool
    await pool.close()


async def test_pool_renders_full_size_in_a_worker(pool: RenditionPool, tmp_path: Path) -> None:
    source = tmp_path / "original"
    source.write_bytes(make_image_bytes("jpeg", size=(800, 600), orientation=6))
    result = await pool.render_full(source, out_dir(tmp_path, "out"), SPEC)
    assert (result.width, result.height) == (800, 600)
    with Image.open(tmp_path / "out" / FULL_NAME) as full:
        assert_upright(full, reference_photo("coffee", (800, 600)))
    assert pool.pending == 0


async def test_concurrent_requests_for_one_photo_share_a_job(
    pool: RenditionPool, tmp_path: Path
) -> None:
    source = fifo(tmp_path, "original")  # the worker blocks reading it until we write
    out = out_dir(tmp_path, "out")
    first = asyncio.create_task(pool.render_full(source, out, SPEC))
    second = asyncio.create_task(pool.render_full(source, out, SPEC))
    writer = await wait_for_reader(source)
    assert pool.pending == 1  # one job for both requests
    second.cancel()  # one client goes away: the job goes on for the other
    with writer:
        await asyncio.to_thread(writer.write, make_image_bytes("jpeg", size=(640, 480)))
    result = await first
    assert (result.width, result.height) == (640, 480)
    with pytest.raises(asyncio.CancelledError):
        await second
    assert_clean_jpeg((out / FULL_NAME).read_bytes(), (640, 480))
    assert pool.pending == 0

    # Once finished, a new request makes a new job (the caller decides when to re-render).
    other = fifo(tmp_path, "other")
    again = asyncio.create_task(pool.render_full(other, out, SPEC))
    await feed(other, make_image_bytes("jpeg", size=(320, 240)))
    assert ((await again).width, pool.pending) == (320, 0)


async def test_full_renders_count_against_the_queue_bound(
    pool: RenditionPool, tmp_path: Path
) -> None:
    sources = [fifo(tmp_path, f"photo{n}") for n in range(3)]
    tasks = [
        asyncio.create_task(pool.render_full(source, out_dir(tmp_path, f"out{n}"), SPEC))
        for n, source in enumerate(sources)
    ]
    writer = await wait_for_reader(sources[0])
    assert pool.pending == 3
    extra = tmp_path / "extra"
    extra.write_bytes(make_image_bytes("jpeg", size=(320, 240)))
    with pytest.raises(PipelineBusy) as caught:
        await pool.render_full(extra, out_dir(tmp_path, "extra-out"), SPEC)
    assert caught.value.status == 503
    with writer:
        await asyncio.to_thread(writer.write, make_image_bytes("jpeg", size=(320, 240)))
    for source in sources[1:]:
        await feed(source, make_image_bytes("jpeg", size=(320, 240)))
    assert [(await task).width for task in tasks] == [320, 320, 320]
