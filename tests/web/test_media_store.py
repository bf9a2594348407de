"""The contract every :class:`web.media.MediaStore` keeps (stage → fsync → publish, recovery,
deletion), run against each implementation.

An implementation is given as a way to open another instance over the same storage (another
replica, or the same service after a restart) and a way to damage a published image's files:
the local folder, and an S3 bucket on the test session's moto server.
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.object_store import Bucket
from tests.photos import make_image_bytes
from web.media import LocalMedia, MediaFile, MediaStore
from web.object_media import ORPHAN_GRACE_SECONDS, ObjectMedia
from web.object_store import open_object_store
from web.pipeline import CorruptImage, RenditionPool, RenditionSpec, UnsupportedImageType
from web.settings import Settings
from web.storage import Committed, LocalImageStore

SPEC = RenditionSpec(display_max_px=500, thumb_max_px=120)
PHOTO = make_image_bytes("jpeg", size=(800, 600))


@dataclass(frozen=True)
class Implementation:
    """How the tests make and damage one kind of media store.

    :ivar open: a new, not started instance over the same storage as every other one.
    :ivar break_published: remove one of a published image's files (its key given).
    :ivar outlive_crash: make a stopped process's leftovers recoverable: nothing on local disk
        (its lock is free once it stopped); for an object store, let the sweeper's grace pass.
    :ivar publish_moves: whether :meth:`MediaStore.publish` moves files (local disk), so that
        staged originals are unreadable until then and recovery counts what it publishes; an
        object store writes final keys that the committed row makes reachable.
    """

    open: Callable[[], MediaStore]
    break_published: Callable[[str], None]
    outlive_crash: Callable[[], None] = lambda: None
    publish_moves: bool = True


def _local(request: pytest.FixtureRequest, tmp_path: Path) -> Implementation:
    root = tmp_path / "data"
    return Implementation(
        open=lambda: LocalMedia(
            LocalImageStore(root), RenditionPool(workers=1, queue_limit=2, on_demand=True)
        ),
        break_published=lambda key: (root / "media" / key / "thumb.jpg").unlink(),
    )


def _s3(request: pytest.FixtureRequest, tmp_path: Path) -> Implementation:
    bucket: Bucket = request.getfixturevalue("s3_bucket")
    settings = Settings(data_dir=tmp_path / "data", **bucket.settings())
    offset = [0.0]

    def open_media() -> MediaStore:
        return ObjectMedia(
            open_object_store(settings),
            LocalImageStore(tmp_path / "scratch"),
            RenditionPool(workers=1, queue_limit=2, on_demand=True),
            url_seconds=600,
            clock=lambda: time.time() + offset[0],
        )

    def outlive_crash() -> None:
        offset[0] += ORPHAN_GRACE_SECONDS + 1

    return Implementation(
        open=open_media,
        break_published=lambda key: bucket.server.client().delete_object(
            Bucket=bucket.name, Key=f"photos/{key}/thumb.jpg"
        ),
        outlive_crash=outlive_crash,
        publish_moves=False,
    )


IMPLEMENTATIONS = {"local": _local, "s3": _s3}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def implementation(request: pytest.FixtureRequest, tmp_path: Path) -> Implementation:
    return IMPLEMENTATIONS[request.param](request, tmp_path)


@pytest.fixture
async def media(implementation: Implementation) -> AsyncIterator[MediaStore]:
    store = implementation.open()
    await store.recover(committed_of(()))
    await store.start()
    yield store
    await store.close()


@pytest.fixture
def reader() -> Iterator[ThreadPoolExecutor]:
    """Where blocking reads of an opened original run."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="media-test-reader")
    yield executor
    executor.shutdown()


async def another(implementation: Implementation) -> MediaStore:
    """A second instance over the same storage, started (as a replica would be)."""
    store = implementation.open()
    await store.start()
    return store


def committed_of(keys: Iterable[str]) -> Committed:
    """A ``committed`` callback for which exactly ``keys`` have a database row."""
    rows = set(keys)

    async def committed(asked: Iterable[str]) -> set[str]:
        return set(asked) & rows

    return committed


def content(found: MediaFile) -> bytes:
    """The bytes a :class:`MediaFile` sends (a redirect's target is fetched)."""
    if found.path is not None:
        return found.path.read_bytes()
    if found.redirect is not None:
        answer = httpx.get(found.redirect)
        assert answer.status_code == 200, answer.text
        return answer.content
    assert found.body is not None
    return found.body


def width_of(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as image:
        return image.width


async def test_staged_upload_is_invisible_until_published(
    media: MediaStore, reader: ThreadPoolExecutor, implementation: Implementation
) -> None:
    staged = await media.stage_and_render(PHOTO, SPEC)
    committed = committed_of([staged.key])
    if implementation.publish_moves:
        assert await media.original(staged.key, "image/jpeg") is None
        assert await media.open_original(staged.key, reader) is None
        assert await media.full_size(staged.key, SPEC, committed) is None
    # An object store: nothing lists the key before its row is committed (128 random bits).
    # Only its renditions may be read before the move: the row is committed before publish,
    # and a page filling a gap from the event log asks for them at once.
    early = await media.rendition(staged.key, "display.jpg")
    assert early is not None and width_of(content(early)) == staged.rendition.display_width
    await media.publish(staged)
    assert await media.original(staged.key, "image/jpeg") is not None


async def test_publish_makes_every_file_readable(
    media: MediaStore, reader: ThreadPoolExecutor
) -> None:
    spilled = media.new_upload_path()
    spilled.write_bytes(PHOTO)
    staged = await media.stage_and_render(spilled, SPEC, room=1)
    assert not spilled.exists(), "the spilled body is consumed by the staging"
    await media.publish(staged)
    committed = committed_of([staged.key])
    assert await media.ensure_published(staged.key, committed)

    for name, width in (
        ("display.jpg", staged.rendition.display_width),
        ("thumb.jpg", staged.rendition.thumb_width),
    ):
        rendition = await media.rendition(staged.key, name)
        assert rendition is not None and rendition.content_type == "image/jpeg"
        data = content(rendition)
        assert rendition.size == len(data) and width_of(data) == width

    original = await media.original(staged.key, "image/jpeg")
    assert original is not None and original.content_type == "image/jpeg"
    assert content(original) == PHOTO and original.size == len(PHOTO)
    opened = await media.open_original(staged.key, reader)
    assert opened is not None
    try:
        assert await opened.read() == PHOTO
        await opened.seek(0)
        assert await opened.read(4) == PHOTO[:4]
    finally:
        await opened.close()

    full = await media.full_size(staged.key, SPEC, committed)
    assert full is not None and full.content_type == "image/jpeg"
    assert width_of(content(full)) == 800 and full.size == len(content(full))
    again = await media.full_size(staged.key, SPEC, committed)
    assert again is not None and content(again) == content(full)


async def test_only_the_two_renditions_are_served(media: MediaStore) -> None:
    staged = await media.stage_and_render(PHOTO, SPEC)
    await media.publish(staged)
    for name in ("original", "full.jpg", "../original", "missing.jpg"):
        assert await media.rendition(staged.key, name) is None
    assert await media.rendition("../" + staged.key, "display.jpg") is None


async def test_discard_removes_the_staged_upload(
    media: MediaStore, implementation: Implementation
) -> None:
    staged = await media.stage_and_render(PHOTO, SPEC)
    await media.discard(staged)
    assert await media.rendition(staged.key, "display.jpg") is None
    assert not await media.ensure_published(staged.key, committed_of([staged.key]))
    await media.close()
    # Nothing left for a later recovery either.
    later = await another(implementation)
    try:
        assert await later.recover(committed_of([staged.key])) == (0, 0)
    finally:
        await later.close()


async def test_a_failed_render_leaves_nothing_staged(
    media: MediaStore, implementation: Implementation
) -> None:
    with pytest.raises((CorruptImage, UnsupportedImageType)):
        await media.stage_and_render(b"not a photo at all", SPEC)
    await media.close()
    later = await another(implementation)
    try:
        assert await later.recover(committed_of(())) == (0, 0)
    finally:
        await later.close()


async def test_recover_finishes_what_a_stopped_process_staged(
    media: MediaStore, implementation: Implementation
) -> None:
    """A process that stops between the row's commit and publish (a crash, or a shutdown at
    that moment): the next recovery publishes its committed uploads and drops the others."""
    kept = await media.stage_and_render(PHOTO, SPEC)
    dropped = await media.stage_and_render(make_image_bytes("png", size=(300, 200)), SPEC)
    await media.close()  # never published
    implementation.outlive_crash()

    survivor = await another(implementation)
    try:
        committed = committed_of([kept.key])
        assert await survivor.recover(committed) == (int(implementation.publish_moves), 1)
        assert await survivor.ensure_published(kept.key, committed)
        original = await survivor.original(kept.key, "image/jpeg")
        assert original is not None and content(original) == PHOTO
        assert await survivor.rendition(kept.key, "thumb.jpg") is not None
        assert await survivor.rendition(dropped.key, "thumb.jpg") is None
        assert await survivor.recover(committed) == (0, 0)
    finally:
        await survivor.close()


async def test_a_live_process_staging_is_left_alone(
    media: MediaStore, implementation: Implementation
) -> None:
    staged = await media.stage_and_render(PHOTO, SPEC)
    replica = await another(implementation)
    try:
        committed = committed_of([staged.key])
        assert await replica.recover(committed_of(())) == (0, 0)
        # Between its commit and its move the image counts as there, for every replica.
        assert await replica.ensure_published(staged.key, committed)
        await media.publish(staged)
        assert await replica.original(staged.key, "image/jpeg") is not None
    finally:
        await replica.close()


async def test_delete_removes_the_published_image(
    media: MediaStore, reader: ThreadPoolExecutor
) -> None:
    staged = await media.stage_and_render(PHOTO, SPEC)
    await media.publish(staged)
    committed = committed_of([staged.key])
    assert await media.full_size(staged.key, SPEC, committed) is not None
    await media.delete(staged.key)
    assert await media.rendition(staged.key, "display.jpg") is None
    assert await media.original(staged.key, "image/jpeg") is None
    assert await media.open_original(staged.key, reader) is None
    assert not await media.ensure_published(staged.key, committed)
    await media.delete(staged.key)  # deleting again is fine


async def test_full_size_of_an_image_deleted_meanwhile_is_removed(media: MediaStore) -> None:
    staged = await media.stage_and_render(PHOTO, SPEC)
    await media.publish(staged)
    # The row went while the full-size render ran: the new file goes with the rest.
    assert await media.full_size(staged.key, SPEC, committed_of(())) is None
    assert await media.original(staged.key, "image/jpeg") is None


async def test_ensure_published_reports_broken_media(
    media: MediaStore, implementation: Implementation
) -> None:
    staged = await media.stage_and_render(PHOTO, SPEC)
    await media.publish(staged)
    committed = committed_of([staged.key])
    assert await media.ensure_published(staged.key, committed)
    implementation.break_published(staged.key)
    assert not await media.ensure_published(staged.key, committed)
