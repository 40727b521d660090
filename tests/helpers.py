"""Helpers several test modules share: the served test index's description and ways to talk to a service."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from PIL import Image

from photo2cad.indexer import open_index
from photo2cad.service.settings import LOOPBACK_HOSTS, ServiceSettings
from photo2cad.shapes.settings import RenderSettings
from photo2cad.weights.bands import ScoreBands
from photo2cad.weights.checkpoint import load_amvml, save_checkpoint

# The renderer of the tests' index: as the tests' checkpoint (tests/conftest.py) expects, 4 views of 64 px.
TEST_RENDER = RenderSettings(num_views=4, embed_size=64)


@dataclass(frozen=True)
class ServedIndex:
    pool: Path
    root: Path  # index directory with `current`
    weights: Path


def index_test_meshes(base: Path, weights: Path) -> ServedIndex:
    """The test meshes (tests/meshpool.py) written to `base`/pool and indexed with `weights` in `base`/index."""
    from photo2cad.indexer import BuildRequest, build_index
    from tests.meshpool import write_pool

    pool, root = base / "pool", base / "index"
    write_pool(pool)
    build_index(BuildRequest(pool=pool, out=root, weights=weights, render=TEST_RENDER, progress=False))
    return ServedIndex(pool, root, weights)


# TestClient's requests carry `Host: testserver`; schemathesis' carry localhost, a loopback name trusted by default.
TEST_HOSTS = [*LOOPBACK_HOSTS, "testserver"]


def settings_for(index: Path, **overrides: Any) -> ServiceSettings:
    values: dict[str, Any] = {
        "index": index,
        "device": "cpu",
        "reload_poll_seconds": 0,
        "allowed_hosts": TEST_HOSTS,
        **overrides,
    }
    return ServiceSettings(**values)


def rendered_photo(index_root: Path, shape_id: str = "chair/box") -> bytes:
    """A grey render of a pool shape, as the indexer wrote it: the photo a user of the demo would upload."""
    index = open_index(index_root)
    entry = next(e for e in index.manifest.shapes if e.shape_id == shape_id)
    return (index.directory / entry.thumbnail).read_bytes()


def image_bytes(size: tuple[int, int], fmt: str = "PNG", mode: str = "RGB", colour: Any = (200, 120, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but holds a few bytes of pixels: what a decompression bomb looks like
    before decoding (the real thing compresses 1e9 zero bytes into a megabyte)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])  # 8-bit grey
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def post_photo(client: TestClient, photo: bytes, mask: bytes | None = None, **fields: Any) -> Any:
    files: dict[str, tuple[str, bytes, str]] = {"photo": ("photo.jpg", photo, "image/jpeg")}
    if mask is not None:
        files["mask"] = ("mask.png", mask, "image/png")
    return client.post("/retrieve", files=files, data={k: str(v) for k, v in fields.items()})


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line) or re.fullmatch(rf"{name} (\S+)", line)
        if match and (not labels or ",".join(sorted(match.group(1).split(","))) == wanted):
            return float(match.groups()[-1])
    return 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class LiveServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def live_server(index: Path, log_path: Path, env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    """`photo2cad serve` on a free loopback port, as a user starts it, until the block ends."""
    port = free_port()
    command = [sys.executable, "-m", "photo2cad.cli", "serve", "--index", str(index)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--no-access-log"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            process.kill()
            raise RuntimeError(f"the server did not become ready; see {log_path}")
        try:
            yield LiveServer(url, port, process)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def weights_with_bands(weights: Path, bands: ScoreBands, out: Path) -> Path:
    """A copy of `weights` whose header carries `bands`, as `photo2cad train bundled` records measured ones. Its
    checksum differs from the index's weights: serve it with allow_weights_mismatch."""
    model, header = load_amvml(weights)
    notes = {**header.notes, "score_bands": bands.model_dump(mode="json")}
    save_checkpoint(out, model, header.model_copy(update={"notes": notes}))
    return out


def recording_entries(entered: list[str], label: str) -> Callable[[], contextlib.AbstractContextManager[None]]:
    """A stand-in for a context manager such as `heap_kept_for_reuse` that appends `label` to `entered` when entered."""

    @contextlib.contextmanager
    def record() -> Iterator[None]:
        entered.append(label)
        yield

    return record
