"""Memory and latency of `photo2cad serve` under a burst of huge uploads (issue #12, item 2).

    .venv/bin/python benchmarks/service_burst.py                      # 50 x 6300x6300 PNG, then 50 x ~17 MB JPEG
    .venv/bin/python benchmarks/service_burst.py --uploads 20 --kinds png

For each kind of huge photo: the server's idle RSS; then N parallel uploads of it while one client, in a process of
its own, keeps sending a small photo (640 x 480 JPEG) one request after another; the server's peak RSS during the
burst, its RSS when the burst has been answered and 10 s later; the small requests' latencies during the burst (p50,
p95, max) and the burst's own answers. Targets (issue #12): RSS back within 300 MB of idle 10 s after the burst; the
small request's p95 under 2 s on 2 cores.

The server runs as a subprocess on 127.0.0.1 only, with the tests' tiny model unless --index/--weights are given.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing import Event, Process, Queue
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service_load import free_port, index_and_weights, query_photo, rss_mb, start_server  # noqa: E402


def huge_png() -> bytes:
    """6300 x 6300 (39.7 MP, under the 40 MP limit): a few hundred KB on the wire, 119 MB of RGB decoded."""
    image = Image.new("RGB", (6300, 6300), (200, 180, 160))
    draw = ImageDraw.Draw(image)
    for x in range(0, 6300, 300):
        draw.line([(x, 0), (6300 - x, 6300)], fill=(40, 60, 90), width=9)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def huge_jpeg() -> bytes:
    """A 4000 x 3000 noise JPEG at quality 97: ~17 MB on the wire, under the 20 MB body limit."""
    noise = np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="JPEG", quality=97)
    return buffer.getvalue()


KINDS = {"png": (huge_png, "image/png"), "jpeg": (huge_jpeg, "image/jpeg")}


@dataclass
class BurstFigures:
    kind: str
    upload_bytes: int
    rss_idle_mb: float
    rss_peak_mb: float
    rss_answered_mb: float
    rss_after_10s_mb: float
    burst_statuses: dict[int, int]
    burst_seconds: float
    small_latencies_ms: list[float]
    small_errors: int


def small_requests(url: str, small: bytes, stop: Event, latencies: Queue) -> None:
    """One client in a process of its own, one small request after another until `stop`: what a user meets during
    the burst, not delayed by the event loop of the process that sends the burst."""
    with httpx.Client(base_url=url, timeout=300) as client:
        while not stop.is_set():
            started = time.perf_counter()
            response = client.post("/retrieve", files={"photo": ("small.jpg", small, "image/jpeg")})
            latencies.put((time.perf_counter() - started) * 1000 if response.status_code == 200 else -1.0)


async def burst(url: str, pid: int, kind: str, uploads: int, small: bytes) -> BurstFigures:
    make, media_type = KINDS[kind]
    huge = make()
    idle = rss_mb(pid)
    peak = idle
    done = asyncio.Event()
    stop, latencies = Event(), Queue()
    prober = Process(target=small_requests, args=(url, small, stop, latencies), daemon=True)
    limits = httpx.Limits(max_connections=uploads)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:

        async def watch_memory() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_mb(pid))
                await asyncio.sleep(0.05)

        async def one_upload() -> int:
            response = await client.post("/retrieve", files={"photo": (f"huge.{kind}", huge, media_type)})
            return response.status_code

        watcher = asyncio.create_task(watch_memory())
        started = time.perf_counter()
        prober.start()
        statuses = await asyncio.gather(*(one_upload() for _ in range(uploads)))
        burst_seconds = time.perf_counter() - started
        stop.set()
        done.set()
        await watcher
    prober.join(timeout=300)
    small_latencies, small_errors = [], 0
    while not latencies.empty():
        value = latencies.get()
        if value < 0:
            small_errors += 1
        else:
            small_latencies.append(value)
    answered = rss_mb(pid)
    await asyncio.sleep(10)
    after = rss_mb(pid)
    counts = {status: statuses.count(status) for status in sorted(set(statuses))}
    return BurstFigures(
        kind, len(huge), idle, peak, answered, after, counts, burst_seconds, small_latencies, small_errors
    )


def report(figures: BurstFigures) -> None:
    latencies = np.array(figures.small_latencies_ms or [0.0])
    back = figures.rss_after_10s_mb - figures.rss_idle_mb
    print(f"\n{figures.kind}: uploads of {figures.upload_bytes / 1e6:.2f} MB each, answers {figures.burst_statuses}")
    print(f"  burst answered in {figures.burst_seconds:.1f} s")
    print(
        f"  server RSS: idle {figures.rss_idle_mb:.0f} MB, peak {figures.rss_peak_mb:.0f} MB, answered "
        f"{figures.rss_answered_mb:.0f} MB, 10 s later {figures.rss_after_10s_mb:.0f} MB "
        f"({back:+.0f} MB vs idle; target within 300 MB: {'met' if back <= 300 else 'NOT met'})"
    )
    p95 = float(np.percentile(latencies, 95))
    print(
        f"  small request during the burst: {len(figures.small_latencies_ms)} answered, {figures.small_errors} errors, "
        f"p50 {np.percentile(latencies, 50):.0f} ms, p95 {p95:.0f} ms, max {latencies.max():.0f} ms "
        f"(target p95 under 2000 ms: {'met' if p95 < 2000 else 'NOT met'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="an index directory; default: build one of a small catalogue")
    parser.add_argument("--weights", type=Path, help="its AMV-ML checkpoint (with --index)")
    parser.add_argument("--model", choices=["tiny", "realistic"], default="tiny", help="without --index")
    parser.add_argument("--uploads", type=int, default=50, help="parallel huge uploads per burst")
    parser.add_argument("--kinds", nargs="+", choices=sorted(KINDS), default=["png", "jpeg"])
    parser.add_argument("--env", nargs="*", default=[], help="PHOTO2CAD_X=value settings for the server")
    args = parser.parse_args()

    print(f"{os.cpu_count()} CPUs, load average before: {[round(x, 2) for x in os.getloadavg()]}")
    with tempfile.TemporaryDirectory(prefix="photo2cad-burst-") as tmp:
        index, weights = index_and_weights(args.index, args.weights, args.model, Path(tmp))
        env = dict(setting.split("=", 1) for setting in args.env)
        port = free_port()
        server = start_server(index, weights, port, env)
        try:
            url = f"http://127.0.0.1:{port}"
            small = query_photo(index, None)
            for _ in range(5):  # warm: the first requests pay for lazy initialisation
                httpx.post(f"{url}/retrieve", files={"photo": ("small.jpg", small, "image/jpeg")}, timeout=60)
            for kind in args.kinds:
                report(asyncio.run(burst(url, server.pid, kind, args.uploads, small)))
            print(f"\nserver peak RSS over the run (VmHWM): {rss_mb(server.pid, 'VmHWM'):.0f} MB")
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    print(f"load average after: {[round(x, 2) for x in os.getloadavg()]}")


if __name__ == "__main__":
    main()
