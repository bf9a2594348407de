"""Benchmark of the image pipeline on 12 MP phone JPEGs.

Run from the repository root::

    uv run python bench/pipeline.py            # about a minute on 2 cores
    uv run python bench/pipeline.py --images 4 --rounds 2   # quicker, noisier

Compares, in one run and on the same files:

- the floor: a bare JPEG decode at scale 1/2 (``Image.draft``), no resize, no output;
- a plain Pillow pipeline: ``thumbnail`` to 1600 (a full-size decode), ``exif_transpose``,
  ``save``, then ``thumbnail`` of that to 400 and ``save`` (no colour management);
- ImageShark's pipeline (:func:`web.pipeline.renditions.render_file`, with its fsyncs).

It prints Markdown tables: milliseconds per image on one core (median), images/s through a pool
of 2 worker processes, a stage-by-stage breakdown of ImageShark's time, the effect of the
worker's malloc tuning, and the resampling filters considered. The photos are the scikit-image
samples upscaled to 4000x3000 with added grain, so that file size (about 3 MB at quality 90) and
entropy-decoding cost resemble a phone's output; see tests/photos.py.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import functools
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# tests/photos.py, the shared test-photo factory, is not part of the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import numpy as np
from PIL import Image, ImageOps, features
from skimage.metrics import structural_similarity

from tests.photos import PHOTO_NAMES, adobe_rgb_profile, make_phone_jpeg
from web.pipeline import RenditionPool, RenditionSpec
from web.pipeline import renditions as r
from web.pipeline.formats import sniff

SPEC = RenditionSpec()
SIZE = (4000, 3000)
ORIENTATIONS = (6, 1, 8, 3)  # mostly portrait: how phones store most photos
GRAIN = 12
POOL_WORKERS = 2


def make_corpus(folder: Path, count: int) -> list[Path]:
    """``count`` distinct 12 MP phone JPEGs (photos x orientations) in ``folder``."""
    paths = []
    for i in range(count):
        name = PHOTO_NAMES[i % len(PHOTO_NAMES)]
        orientation = ORIENTATIONS[(i // len(PHOTO_NAMES) + i) % len(ORIENTATIONS)]
        path = folder / f"{i:02d}-{name}-o{orientation}.jpg"
        paths.append(make_phone_jpeg(path, orientation=orientation, name=name, grain=GRAIN))
    return paths


def with_icc_profile(source: Path, target: Path) -> Path:
    """``source`` with an Adobe RGB ICC profile inserted (stands in for an iPhone's Display P3)."""
    data = source.read_bytes()
    profile = adobe_rgb_profile()
    payload = b"ICC_PROFILE\0\x01\x01" + profile
    segment = b"\xff\xe2" + (len(payload) + 2).to_bytes(2, "big") + payload
    target.write_bytes(data[:2] + segment + data[2:])
    return target


# --- the three pipelines (module level: they run in pool workers too) -----------------------


def decode_half(source: Path, out_dir: Path) -> None:
    """The floor: DCT-scaled decode at 1/2, nothing else."""
    with Image.open(source) as image:
        image.draft("RGB", (image.width // 2, image.height // 2))
        image.load()


def plain_pillow(source: Path, out_dir: Path) -> None:
    """Full decode, ``thumbnail``, save: what one writes first (orientation applied, to be fair).

    ``thumbnail`` asks for a draft of twice the box (3200x3200), which a 4000x3000 photo cannot
    satisfy at 1/2, so the decode is full size.
    """
    with Image.open(source) as image:
        image.thumbnail((SPEC.display_max_px, SPEC.display_max_px))
        display = ImageOps.exif_transpose(image).convert("RGB")
    display.save(out_dir / "display.jpg", quality=SPEC.display_quality)
    thumb = display.copy()
    thumb.thumbnail((SPEC.thumb_max_px, SPEC.thumb_max_px))
    thumb.save(out_dir / "thumb.jpg", quality=SPEC.thumb_quality)


def imageshark(source: Path, out_dir: Path) -> None:
    r.render_file(source, out_dir, SPEC)


PIPELINES: dict[str, Callable[[Path, Path], None]] = {
    "Bare JPEG decode at 1/2 (floor)": decode_half,
    "Plain Pillow pipeline": plain_pillow,
    "ImageShark `render_file`": imageshark,
}


def timed_job_with_faults(source: Path, out_dir: Path) -> tuple[float, int]:
    """One ImageShark render in a worker: (seconds, minor page faults)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    started = time.perf_counter()
    r.render_file(source, out_dir, SPEC)
    elapsed = time.perf_counter() - started
    return elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


# --- measurements ----------------------------------------------------------------------------


def timed(run: Callable[[Path, Path], None], source: Path, out_dir: Path) -> float:
    """Seconds ``run`` takes in the worker (no inter-process overhead)."""
    started = time.perf_counter()
    run(source, out_dir)
    return time.perf_counter() - started


def single_core(
    images: list[Path], rounds: int, work: Path
) -> tuple[dict[str, list[float]], list[float]]:
    """Per-image seconds for each pipeline, each in its own worker process.

    Every pipeline gets a 1-worker pool with the production initializer, so none inherits
    another's heap; jobs are interleaved one at a time so that load from elsewhere on the
    machine falls on all of them alike.
    """
    icc_image = with_icc_profile(images[0], work / "icc.jpg")
    out = _fresh_dir(work)
    times: dict[str, list[float]] = {name: [] for name in PIPELINES}
    icc_times: list[float] = []
    executors = {
        name: ProcessPoolExecutor(1, mp_context=_context(), initializer=r.init_worker)
        for name in PIPELINES
    }
    try:
        for name, executor in executors.items():  # warm-up: page cache, lazy imports, heap
            for image in images[:2]:
                executor.submit(timed, PIPELINES[name], image, out).result()
        for _ in range(rounds):
            for image in images:
                for name, executor in executors.items():
                    times[name].append(executor.submit(timed, PIPELINES[name], image, out).result())
            ours = executors["ImageShark `render_file`"]
            icc_times.append(ours.submit(timed, imageshark, icc_image, out).result())
    finally:
        for executor in executors.values():
            executor.shutdown()
    return times, icc_times


def _context() -> multiprocessing.context.BaseContext:
    return multiprocessing.get_context("forkserver")


def pool_throughput(images: list[Path], rounds: int, work: Path) -> dict[str, float]:
    """Images per second through a pool of POOL_WORKERS processes, per pipeline."""
    jobs = [image for _ in range(rounds) for image in images]
    result: dict[str, float] = {}
    for name, run in PIPELINES.items():
        if run is imageshark:
            result[name] = asyncio.run(_imageshark_pool(jobs, work))
            continue
        with ProcessPoolExecutor(
            POOL_WORKERS, mp_context=_context(), initializer=r.init_worker
        ) as executor:
            list(executor.map(run, images, [work] * len(images)))  # warm-up pass
            started = time.perf_counter()
            dirs = [_fresh_dir(work) for _ in jobs]
            list(executor.map(run, jobs, dirs))
            result[name] = len(jobs) / (time.perf_counter() - started)
    return result


async def _imageshark_pool(jobs: list[Path], work: Path) -> float:
    pool = RenditionPool(POOL_WORKERS, queue_limit=len(jobs))
    await pool.start()
    try:
        await asyncio.gather(*(pool.render(job, _fresh_dir(work), SPEC) for job in jobs[:4]))
        dirs = [_fresh_dir(work) for _ in jobs]
        started = time.perf_counter()
        await asyncio.gather(
            *(pool.render(job, d, SPEC) for job, d in zip(jobs, dirs, strict=True))
        )
        return len(jobs) / (time.perf_counter() - started)
    finally:
        await pool.close()


def _fresh_dir(work: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=work))


def stages(images: list[Path], rounds: int, work: Path) -> dict[str, float]:
    """Median milliseconds per stage, timing the pipeline's own steps one by one.

    Mirrors :func:`web.pipeline.renditions.render_bytes` step for step with the module's own
    helpers and constants, so the settings cannot drift from the product.
    """
    spans: dict[str, list[float]] = {}
    out = _fresh_dir(work)

    def lap(name: str, started: float) -> float:
        now = time.perf_counter()
        spans.setdefault(name, []).append(now - started)
        return now

    for _ in range(rounds):
        for path in images:
            t = time.perf_counter()
            data = path.read_bytes()
            t = lap("read file", t)
            kind = sniff(data)
            image = r._open(data, kind, SPEC.max_pixels)
            orientation = r._orientation(image)
            transposed = orientation >= 5
            upright = image.size[::-1] if transposed else image.size
            display_size = r.fit(upright, SPEC.display_max_px)
            target = display_size[::-1] if transposed else display_size
            t = lap("sniff, open header, EXIF", t)
            image.draft("RGB", target)
            image.load()
            image = r._working_mode(image)
            t = lap("JPEG decode, DCT-scaled 1/2", t)
            display = r._resize_display(image, target)
            t = lap("resize to display (OpenCV bilinear)", t)
            display = r._to_srgb(display, image.info.get("icc_profile"))
            t = lap("colour (no profile: none)", t)
            if orientation != 1:
                display = display.transpose(r._UPRIGHT[orientation])
            t = lap("rotate upright", t)
            display_jpeg = r._encode(display, SPEC.display_quality, optimize=False)
            t = lap("encode display JPEG", t)
            thumb_w, thumb_h = r.fit(upright, SPEC.thumb_max_px)
            thumb = r._resize(display, (thumb_w, thumb_h), r._THUMB_FILTER, r._THUMB_REDUCING_GAP)
            t = lap("thumbnail from display", t)
            thumb_jpeg = r._encode(thumb, SPEC.thumb_quality, optimize=True)
            t = lap("encode thumbnail JPEG", t)
            r._write_durably(out / r.DISPLAY_NAME, display_jpeg)
            r._write_durably(out / r.THUMB_NAME, thumb_jpeg)
            r.fsync_directory(out)
            lap("write + fsync both files", t)
    return {name: statistics.median(values) * 1000 for name, values in spans.items()}


def malloc_tuning(images: list[Path], work: Path) -> dict[bool, tuple[float, float, float]]:
    """For a fresh 1-worker pool with and without mallopt: (median ms, first-4 ms, faults)."""
    result = {}
    for tune in (False, True):
        with ProcessPoolExecutor(
            1, mp_context=_context(), initializer=r.init_worker, initargs=(tune,)
        ) as executor:
            samples = [
                executor.submit(timed_job_with_faults, image, _fresh_dir(work)).result()
                for image in images * 2
            ]
        seconds = [s for s, _ in samples]
        faults = [f for _, f in samples]
        result[tune] = (
            statistics.median(seconds) * 1000,
            statistics.median(seconds[:4]) * 1000,
            statistics.median(faults),
        )
    return result


def resampling(image_path: Path) -> list[tuple[str, float, float]]:
    """(resampler, ms, SSIM) for the display resize from the 1/2 decode, against Lanczos from
    the full decode: Pillow's filters, OpenCV's (one thread, as in a worker, on the NumPy array
    alone) and the pipeline's own step including the copies between Pillow and NumPy."""
    cv2.setNumThreads(1)
    with Image.open(image_path) as full:
        truth = full.resize((1600, 1200), Image.Resampling.LANCZOS)
    with Image.open(image_path) as half:
        half.draft("RGB", (1600, 1200))
        half.load()
        pixels = np.asarray(half)
        candidates: list[tuple[str, Callable[[], Image.Image]]] = [
            (f"Pillow {name}", functools.partial(half.resize, (1600, 1200), Image.Resampling[name]))
            for name in ("BOX", "BILINEAR", "HAMMING", "BICUBIC", "LANCZOS")
        ]
        for name in ("INTER_LINEAR", "INTER_CUBIC", "INTER_AREA"):
            flag = getattr(cv2, name)
            candidates.append(
                (
                    f"OpenCV {name}",
                    lambda flag=flag: Image.fromarray(
                        cv2.resize(pixels, (1600, 1200), interpolation=flag)
                    ),
                )
            )
        candidates.append(
            (
                "ImageShark `_resize_display` (OpenCV INTER_LINEAR + copies)",
                functools.partial(r._resize_display, half, (1600, 1200)),
            )
        )
        rows = []
        for name, resize in candidates:
            runs = []
            for _ in range(7):
                started = time.perf_counter()
                result = resize()
                runs.append(time.perf_counter() - started)
            ssim = structural_similarity(
                np.asarray(result.convert("L")), np.asarray(truth.convert("L"))
            )
            rows.append((name, statistics.median(runs) * 1000, float(ssim)))
    return rows


# --- report ----------------------------------------------------------------------------------


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{model}, {os.cpu_count()} cores, Linux {platform.release()}, Python "
        f"{platform.python_version()}, Pillow {Image.__version__} "
        f"(libjpeg-turbo {features.version('jpg')})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8, help="distinct photos (default 8)")
    parser.add_argument("--rounds", type=int, default=5, help="passes over them (default 5)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="imageshark-bench-") as tmp:
        work = Path(tmp)
        images = make_corpus(work, args.images)
        mean_mb = statistics.mean(p.stat().st_size for p in images) / 1e6
        print(f"# Image pipeline benchmark, {datetime.date.today().isoformat()}\n")
        print(f"Machine: {machine()}\n")
        print(
            f"Corpus: {len(images)} phone JPEGs, {SIZE[0]}x{SIZE[1]} (12 MP), quality 90, "
            f"mean {mean_mb:.1f} MB, orientations {sorted({int(p.stem[-1]) for p in images})}; "
            f"{args.rounds} rounds, N = {len(images) * args.rounds} per pipeline.\n"
        )

        times, icc_times = single_core(images, args.rounds, work)
        throughput = pool_throughput(images, args.rounds, work)
        floor = statistics.median(times["Bare JPEG decode at 1/2 (floor)"])
        print("| Pipeline | ms/image, 1 core (median) | x floor | images/s, pool of 2 |")
        print("|---|---:|---:|---:|")
        for name, values in times.items():
            median = statistics.median(values)
            print(
                f"| {name} | {median * 1000:.1f} | {median / floor:.2f} | {throughput[name]:.1f} |"
            )
        icc_median = statistics.median(icc_times)
        print(
            f"| ImageShark, photo with a wide-gamut ICC profile | {icc_median * 1000:.1f} | "
            f"{icc_median / floor:.2f} | |"
        )
        plain = statistics.median(times["Plain Pillow pipeline"])
        ours = statistics.median(times["ImageShark `render_file`"])
        print(f"\nImageShark is {plain / ours:.2f}x faster than the plain Pillow pipeline.\n")

        with ProcessPoolExecutor(1, mp_context=_context(), initializer=r.init_worker) as executor:
            stage_ms = executor.submit(stages, images, args.rounds, work).result()
        print("| Stage (ImageShark, 12 MP) | ms (median) | share |")
        print("|---|---:|---:|")
        total = sum(stage_ms.values())
        for name, ms in stage_ms.items():
            print(f"| {name} | {ms:.1f} | {ms / total:.0%} |")
        print(f"| **sum of stage medians** | **{total:.1f}** | |\n")

        tuning = malloc_tuning(images, work)
        print(
            "| Fresh 1-worker pool, 16 renders | median ms | first 4, median ms | "
            "minor faults/image |"
        )
        print("|---|---:|---:|---:|")
        for tune, (median, first, faults) in tuning.items():
            label = "mallopt tuned (as shipped)" if tune else "glibc defaults"
            print(f"| {label} | {median:.1f} | {first:.1f} | {faults:.0f} |")

        print("\n| Display resize from 1/2 decode | ms | SSIM vs Lanczos from full |")
        print("|---|---:|---:|")
        for name, ms, ssim in resampling(images[1]):
            print(f"| {name} | {ms:.1f} | {ssim:.4f} |")


if __name__ == "__main__":
    main()
