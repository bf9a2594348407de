"""Time from a 12 MP upload request to ``image_added`` on another client, and server memory.

Starts ``imageshark serve`` on the embedded default (SQLite, local files, in-process broadcast)
in a temporary data folder, connects one Socket.IO client to a room, uploads N distinct 12 MP
phone JPEGs one after another and records, per photo, the time from starting the HTTP request
to the client receiving its ``image_added``. Prints the median, p90 and max, and the server's
peak resident memory (the uvicorn process plus its rendition workers, from /proc VmHWM).

Run from the repository root: ``uv run python bench/upload_to_event.py [--count 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.photos import make_phone_jpeg
from tests.production.processes import Replica


def peak_rss_kib(pid: int) -> int:
    """VmHWM of ``pid`` plus all its descendants, in KiB."""
    total = 0
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            total += int(line.split()[1])
    if children.exists():
        for child in children.read_text().split():
            total += peak_rss_kib(int(child))
    return total


async def main(count: int) -> None:
    photos_dir = Path(tempfile.mkdtemp(prefix="imageshark-bench-photos-"))
    names = ("coffee", "chelsea", "astronaut", "rocket")
    photos = [
        make_phone_jpeg(
            photos_dir / f"IMG_{index:04}.JPG",
            orientation=(6, 1, 8, 3)[index % 4],
            name=names[index % 4],
            quality=88 + index % 5,
            grain=6,
        ).read_bytes()
        for index in range(count)
    ]
    data_dir = tempfile.mkdtemp(prefix="imageshark-bench-data-")
    replica = Replica("server", {"IMAGESHARK_DATA_DIR": data_dir})
    for production_only in ("DATABASE_URL", "REDIS_URL"):  # the embedded default
        replica.env.pop(production_only, None)
    await replica.start()
    assert replica.process is not None
    try:
        async with httpx.AsyncClient(base_url=replica.base_url, timeout=60) as http:
            room = (await http.post("/api/rooms", json={"title": "bench"})).json()
            received: dict[int, float] = {}
            arrived = asyncio.Event()
            client = socketio.AsyncClient(reconnection=False)

            async def on_image(image: dict) -> None:
                received[image["id"]] = time.perf_counter()
                arrived.set()

            client.on("image_added", on_image)
            await client.connect(
                replica.base_url,
                auth={"token": room["token"], "name": "wall", "last_seq": 0},
                transports=["websocket"],
            )
            latencies = []
            for data in photos:
                arrived.clear()
                started = time.perf_counter()
                response = await http.post(
                    f"/api/rooms/{room['token']}/images", files={"file": ("p.jpg", data)}
                )
                assert response.status_code == 201, response.text
                image_id = response.json()["id"]
                while image_id not in received:
                    await arrived.wait()
                    arrived.clear()
                latencies.append((received[image_id] - started) * 1000)
            await client.disconnect()
        peak = peak_rss_kib(replica.process.pid)
    finally:
        await replica.stop()
    latencies.sort()
    print(
        f"photos: {count} distinct 12 MP phone JPEGs, "
        f"{sum(map(len, photos)) / count / 1e6:.1f} MB avg"
    )
    print(
        f"upload request -> image_added on another client (ms): median "
        f"{statistics.median(latencies):.0f}, p90 {latencies[int(0.9 * (count - 1))]:.0f}, "
        f"max {latencies[-1]:.0f}"
    )
    print(f"server peak RSS (uvicorn + rendition workers): {peak / 1024:.0f} MiB")
    print(f"cores: {os.cpu_count()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20, help="photos to upload (default 20)")
    asyncio.run(main(parser.parse_args().count))
