"""A million shapes in one service: startup, memory and latency of `photo2cad serve` over a synthetic index.

    python benchmarks/scale.py 1000 1000000                   # exact and IVF at both sizes
    python benchmarks/scale.py 100000 --kinds exact ivf hnsw --requests 300

For each N it writes a synthetic index version of N shapes (no rendering): shape vectors and view embeddings drawn
at random (below), a valid manifest and shapes table, one shared thumbnail, the bundled weights' identity and sizes.
For each search kind it then builds that kind's index from the same arrays (timing the build and reporting the
recall the build tuned to), starts `photo2cad serve` on 127.0.0.1 in a subprocess and measures:

- startup: from launching the process to the first ready answer of /readyz (imports, weights, index, warm-up)
- RSS of the server process after startup and after all requests (VmRSS, and its anonymous / file-backed parts)
- POST /retrieve p50 / p95 at top_k 10, one client, sequential: the client's round trip and the server's own
  search stage (`timings.search_ms`), without and with a category filter
- in-process: search p50 of the version's vector search alone, and recall@10 of the approximate kinds against exact
  search on fresh queries near stored shapes

The vectors: real shape embeddings are not uniform on the sphere; models come in families (sizes, colours,
variants) that lie close together. Shapes are drawn in families of FAMILY_SIZE around random centres, each shape
its centre plus noise (cosine about 0.8 to the centre); queries are shapes plus noise of norm 0.5, as the
calibration of the index does. `--uniform` draws every vector independently instead (no structure at all: the worst
case for any approximate search). The device is chosen at run time (the server's `--device auto`), so the same
command measures a GPU machine. Nothing is downloaded; the server only listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from photo2cad.indexer import layout
from photo2cad.indexer.manifest import IndexCounts, Manifest
from photo2cad.indexer.shape_table import ShapeEntry, ShapeTable
from photo2cad.indexer.vector_search import (
    SearchConfig,
    VectorSearch,
    calibration_queries,
    exact_search,
    recall_of,
)
from photo2cad.indexer.version import open_index
from photo2cad.indexer.writer import weights_identity
from photo2cad.models import vector_dim
from photo2cad.shapes.settings import render_settings_for
from photo2cad.weights import read_header, resolve_amvml
from photo2cad.weights.checkpoint import amvml_config

FAMILY_SIZE = 50
FAMILY_NOISE = 0.75  # noise norm around a family centre: cosine ~0.8 to it
CHUNK = 20_000  # rows per step: a step of view embeddings is 20k x 12 x 256 floats (250 MB)


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def write_arrays(data: Path, count: int, dim: int, view_dim: int, views: int, uniform: bool, seed: int = 0) -> None:
    """shape_vectors.npy (float32, `dim` wide) and view_embeddings.npy (float16, `view_dim` wide: the embedding
    without the prior's features), written chunk by chunk."""
    rng = np.random.default_rng(seed)
    vectors = np.lib.format.open_memmap(data / layout.VECTORS, mode="w+", dtype=np.float32, shape=(count, dim))
    view_embeddings = np.lib.format.open_memmap(
        data / layout.VIEW_EMBEDDINGS, mode="w+", dtype=np.float16, shape=(count, views, view_dim)
    )
    families = unit(rng.standard_normal((max(1, count // FAMILY_SIZE), dim), dtype=np.float32))
    for start in range(0, count, CHUNK):
        n = min(CHUNK, count - start)
        if uniform:
            chunk = unit(rng.standard_normal((n, dim), dtype=np.float32))
        else:
            noise = unit(rng.standard_normal((n, dim), dtype=np.float32)) * FAMILY_NOISE
            chunk = unit(families[rng.integers(0, len(families), n)] + noise)
        vectors[start : start + n] = chunk
        own = unit(chunk[:, :view_dim])[:, None, :]
        around = own + 0.5 * unit(rng.standard_normal((n, views, view_dim), dtype=np.float32))
        view_embeddings[start : start + n] = unit(around).astype(np.float16)
    vectors.flush()
    view_embeddings.flush()


def write_version(root: Path, data: Path, count: int, categories: int, kind: str, weights: Path) -> tuple[str, float]:
    """A version of the arrays in `data` searched by `kind` under index directory `root`; returns (name, build s)."""
    header = read_header(weights)
    render = render_settings_for(header)
    name = layout.new_version_name()
    version = root / name
    (version / layout.THUMBNAILS).mkdir(parents=True)
    thumbnail = Image.new("RGB", (160, 160), (200, 200, 200))
    thumbnail.save(version / layout.THUMBNAILS / "synthetic.jpg", quality=85)
    for file in (layout.VECTORS, layout.VIEW_EMBEDDINGS):
        os.link(data / file, version / file)
    vectors = np.load(version / layout.VECTORS, mmap_mode="r")
    started = time.perf_counter()
    search = VectorSearch.build(vectors, SearchConfig(kind=kind))  # type: ignore[arg-type]
    search.save(version / layout.FAISS_FILE)
    build_s = time.perf_counter() - started
    per_category = -(-count // categories)
    entries = (
        ShapeEntry(
            shape_id=f"c{row // per_category:02d}/shape_{row:07d}",
            source_path=f"c{row // per_category:02d}/shape_{row:07d}.obj",
            category=f"c{row // per_category:02d}",
            checksum=f"{row:064x}",
            thumbnail=f"{layout.THUMBNAILS}/synthetic.jpg",
        )
        for row in range(count)
    )
    Manifest(
        version=name,
        pool_root=str(root / "pool"),
        render=render,
        render_identity=render.identity(),
        weights=weights_identity(weights, header),
        embedding_dim=vectors.shape[1],
        index_kind=kind,  # type: ignore[arg-type]
        index_params=search.params,
        search=SearchConfig(kind=kind),  # type: ignore[arg-type]
        approximate_recall_at_10=search.params.get("recall_at_10"),
        counts=IndexCounts(shapes=count, failed=0, views=count * render.num_views),
        shapes=ShapeTable.from_entries(entries),
    ).write(version)
    layout.publish(root, version)
    return name, build_s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def photo_bytes(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((224, 224, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def serve_and_measure(root: Path, weights: Path, requests: int, category: str) -> dict[str, Any]:
    port = free_port()
    command = [sys.executable, "-m", "photo2cad.cli", "serve", "--index", str(root), "--weights", str(weights)]
    command += ["--port", str(port), "--no-access-log"]
    started = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=60) as client:
            deadline = time.monotonic() + 600
            peak, peak_at = 0.0, 0.0  # the RSS climb during start-up, sampled every 50 ms
            while True:
                if server.poll() is None:
                    with contextlib.suppress(OSError, KeyError):
                        now = rss_mb(server.pid)["VmRSS"]
                        if now > peak:
                            peak, peak_at = now, time.perf_counter() - started
                if server.poll() is not None:
                    raise RuntimeError(f"the server exited: {server.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
                try:
                    if client.get(f"{url}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not become ready in 600 s")
                time.sleep(0.05)
            startup_s = time.perf_counter() - started
            after_start = rss_mb(server.pid)
            result: dict[str, Any] = {
                "startup_s": round(startup_s, 2),
                "rss_after_start_mb": after_start,
                "rss_sampled_peak_during_start_mb": [round(peak), round(peak_at, 2)],
            }
            photos = [photo_bytes(i) for i in range(8)]
            for label, extra in (("unfiltered", {}), ("category", {"category": category})):
                for i in range(5):  # warm-up
                    client.post(f"{url}/retrieve", files={"photo": ("p.jpg", photos[i % 8])}, data=extra)
                round_trips, searches = [], []
                for i in range(requests):
                    sent = time.perf_counter()
                    response = client.post(
                        f"{url}/retrieve", files={"photo": ("p.jpg", photos[i % 8])}, data={"top_k": "10", **extra}
                    )
                    round_trips.append((time.perf_counter() - sent) * 1000)
                    response.raise_for_status()
                    searches.append(float(response.json()["timings"]["search_ms"]))
                result[label] = {
                    "retrieve_ms_p50_p95": [round(v, 2) for v in percentiles(round_trips)],
                    "search_ms_p50_p95": [round(v, 3) for v in percentiles(searches)],
                }
            result["rss_after_requests_mb"] = rss_mb(server.pid)
            return result
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def in_process(root: Path, category: str, queries: np.ndarray, truth: np.ndarray | None) -> dict[str, Any]:
    index = open_index(root)
    timings, filtered = [], []
    for query in queries[:300]:
        started = time.perf_counter()
        index.search(query[None], 10)
        timings.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        index.search(query[None], 10, category=category)
        filtered.append((time.perf_counter() - started) * 1000)
    found = np.array([[h.row for h in hits] for hits in index.search(queries, 10)])
    return {
        "search_ms_p50": round(statistics.median(timings), 3),
        "category_search_ms_p50": round(statistics.median(filtered), 3),
        "recall_at_10_fresh_queries": None if truth is None else round(recall_of(found, truth), 4),
        "recall_at_10_at_build": index.manifest.approximate_recall_at_10,
        "index_params": index.manifest.index_params,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", type=int, nargs="+", help="numbers of shapes, e.g. 1000 1000000")
    parser.add_argument("--kinds", nargs="+", default=["exact", "ivf"], choices=["exact", "ivf", "hnsw"])
    parser.add_argument("--categories", type=int, default=10, help="equal-sized categories (default 10)")
    parser.add_argument("--requests", type=int, default=200, help="sequential /retrieve requests per measurement")
    parser.add_argument("--uniform", action="store_true", help="independent uniform vectors: no structure")
    parser.add_argument("--weights", type=Path, default=None, help="default: the bundled weights")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder (removed)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    weights = resolve_amvml(args.weights)
    header = read_header(weights)
    config = amvml_config(weights, header)
    dim, view_dim = vector_dim(config), config.embedding_dim
    views = render_settings_for(header).num_views
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; python {platform.python_version()}")
    results: dict[str, Any] = {}
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="photo2cad-scale-", dir=args.workdir))
    try:
        for count in args.sizes:
            data = work / f"data-{count}"
            data.mkdir()
            started = time.perf_counter()
            write_arrays(data, count, dim, view_dim, views, args.uniform)
            print(
                f"N={count:,}: wrote {dim}-D vectors and {views} view embeddings each in "
                f"{time.perf_counter() - started:.1f} s"
            )
            vectors = np.load(data / layout.VECTORS, mmap_mode="r")
            queries = calibration_queries(vectors, 500, seed=1)  # not the build's calibration queries (seed 0)
            _, truth = exact_search(queries, vectors, 10)
            for kind in args.kinds:
                root = work / f"index-{count}-{kind}"
                _, build_s = write_version(root, data, count, args.categories, kind, weights)
                measured = {"build_s": round(build_s, 2)}
                measured.update(in_process(root, "c00", queries, truth if kind != "exact" else None))
                measured.update(serve_and_measure(root, weights, args.requests, "c00"))
                results[f"{count}/{kind}"] = measured
                print(f"N={count:,} {kind}: {json.dumps(measured)}", flush=True)
                shutil.rmtree(root)
            shutil.rmtree(data)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
