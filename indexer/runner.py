"""Build, update, re-index and describe an index directory: the local runner over reader, mapper and writer.

A build takes each shape from the cheapest place that has it: the current version (same pool file, renderer, face
budget and weights), else a shard of an interrupted build, else rendering and embedding it now. Changing only how
the vectors are searched (`SearchConfig`) therefore renders nothing, and a build that would change nothing publishes
nothing.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
from tqdm import tqdm

from photo2cad.device import pick_device
from photo2cad.heap import heap_kept_for_reuse
from photo2cad.indexer import layout
from photo2cad.indexer.manifest import FailedEntry, Manifest, ShapeEntry
from photo2cad.indexer.mapper import (
    MeshPreparation,
    PreparedBatch,
    RenderedBatch,
    RenderedShape,
    StageTimes,
    draw_shapes,
    embed_shapes,
    pipelined_shards,
    prepare_shapes,
)
from photo2cad.indexer.mesh_cache import MeshCache
from photo2cad.indexer.shards import EmbeddedShape, FailedShape, Shard, ShardStore, thumbnail_name
from photo2cad.indexer.vector_search import SearchConfig
from photo2cad.indexer.version import IndexVersion, open_index
from photo2cad.indexer.writer import BuildError, RowSource, VersionPlan, write_version
from photo2cad.models import AMVML, vector_dim
from photo2cad.models.onnx_views import OnnxViewEngine, onnx_view_engine
from photo2cad.shapes.meshes import file_checksum
from photo2cad.shapes.pool import PoolListing, ShapeRecord, scan_pool
from photo2cad.shapes.render import Renderer
from photo2cad.shapes.settings import RenderSettings
from photo2cad.weights.checkpoint import load_amvml_for_inference

log = logging.getLogger(__name__)

# Meshes above this many faces are simplified before rendering (docs/indexing.md: the views stay the same).
DEFAULT_MAX_FACES = 20_000


@dataclass(frozen=True)
class BuildRequest:
    pool: Path
    out: Path
    weights: Path
    categories_csv: Path | None = None
    render: RenderSettings = field(default_factory=RenderSettings)
    search: SearchConfig = field(default_factory=SearchConfig)
    batch_size: int = 8
    device: str = "auto"
    resume: bool = True
    reuse: bool = True  # take unchanged shapes from the current version when it was made the same way
    shapes: tuple[ShapeRecord, ...] | None = None  # an explicit pool (a dataset's) instead of scanning `pool`
    progress: bool = True
    keep_versions: int = 2
    max_faces: int | None = DEFAULT_MAX_FACES  # None: draw every face
    mesh_cache: bool = True
    cpu_runtime: Literal["onnxruntime", "torch"] = "onnxruntime"


@dataclass
class BuildReport:
    version_dir: Path
    shapes: int
    embedded_now: int
    reused: int
    resumed: int
    failures: list[FailedEntry]
    seconds: float
    times: StageTimes
    recall_at_10: float | None = None
    published: bool = True  # False: nothing changed, the current version stays


@dataclass(frozen=True)
class BuildIdentity:
    """What a shape's vectors depend on besides its file: shapes built under another identity are not reused."""

    pool: str
    render_identity: str
    weights_sha256: str
    max_faces: int | None

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    def matches(self, manifest: Manifest) -> bool:
        return (
            manifest.render_identity == self.render_identity
            and manifest.weights.sha256 == self.weights_sha256
            and manifest.max_faces == self.max_faces
        )


def check_model_fits_renderer(model: AMVML, render: RenderSettings) -> None:
    if model.config.image_size != render.embed_size:
        raise BuildError(
            f"the weights expect {model.config.image_size} px views but the renderer makes {render.embed_size} px"
        )


def relative_sources(shapes: Sequence[ShapeRecord], pool: Path) -> dict[str, str]:
    """shape_id -> its file relative to the (resolved) pool; refused before any work when a file lies outside it
    (the service only hands out meshes inside the pool)."""
    root = pool.resolve()
    relative: dict[str, str] = {}
    outside: list[str] = []
    for record in shapes:
        try:
            relative[record.shape_id] = str(record.path.resolve().relative_to(root))
        except ValueError:
            outside.append(f"{record.path} -> {record.path.resolve()}")
    if outside:
        raise BuildError(
            f"{len(outside)} shape files lie outside the pool {root} (through symbolic links?), e.g. "
            + "; ".join(outside[:3])
            + ": copy or link their folders into the pool, or index the folder they live in"
        )
    return relative


def _batches(items: Sequence[tuple[ShapeRecord, str]], size: int) -> list[Sequence[tuple[ShapeRecord, str]]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _lock(build_dir: Path) -> int:
    handle = os.open(build_dir / "lock", os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as err:
        os.close(handle)
        raise BuildError(f"another build is running on {build_dir.parent}") from err
    return handle


def _prepare_build_dir(request: BuildRequest, identity: BuildIdentity) -> tuple[Path, int]:
    build_dir = request.out / layout.BUILD_DIR
    marker = build_dir / "build.json"
    if build_dir.exists():
        same = marker.is_file() and marker.read_text() == identity.to_json()
        if request.resume and same:
            log.info("resuming the interrupted build in %s", build_dir)
        else:
            why = "--no-resume was given" if not request.resume else "its pool, renderer or weights differ"
            log.info("discarding the unfinished build in %s (%s)", build_dir, why)
            shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    lock = _lock(build_dir)
    marker.write_text(identity.to_json())
    return build_dir, lock


def _reusable_version(request: BuildRequest, identity: BuildIdentity) -> IndexVersion | None:
    """The current version when its shapes may be reused (same renderer, face budget and weights)."""
    if not request.reuse or not layout.has_index(request.out):
        return None
    current = open_index(request.out)
    if not identity.matches(current.manifest):
        log.info("renderer, face budget or weights changed since the current version: every shape is embedded again")
        return None
    return current


Distributor = Callable[
    [Sequence[tuple[ShapeRecord, str]], "BuildRequest", AMVML, torch.device], Iterator[tuple[Shard, StageTimes]]
]


def local_distributor(
    todo: Sequence[tuple[ShapeRecord, str]], request: BuildRequest, model: AMVML, device: torch.device
) -> Iterator[tuple[Shard, StageTimes]]:
    """One process, three threads: a batch is loaded while the one before it is drawn and the one before that is
    embedded (mapper.pipelined_shards)."""
    engine = onnx_view_engine(model, device) if request.cpu_runtime == "onnxruntime" else None
    preparation = MeshPreparation.for_views(request.max_faces, request.render)
    cache = MeshCache(request.out / layout.MESH_CACHE, preparation.variant) if request.mesh_cache else None

    def prepare_batch(batch: Sequence[tuple[ShapeRecord, str]]) -> PreparedBatch:
        times = StageTimes()
        shapes, failed = prepare_shapes(batch, preparation, cache, times)
        return shapes, failed, times

    def draw_batch(renderer: Renderer, batch: PreparedBatch) -> RenderedBatch:
        shapes, failed, times = batch
        rendered, failed_drawing = draw_shapes(shapes, renderer, request.render, times)
        return rendered, failed + failed_drawing, times

    def embed(rendered: list[RenderedShape], times: StageTimes) -> list[EmbeddedShape]:
        return embed_shapes(rendered, model, device, times, engine)

    with heap_for_embedding(engine, device):
        yield from pipelined_shards(
            _batches(todo, request.batch_size), prepare_batch, draw_batch, lambda: Renderer(request.render), embed
        )


def heap_for_embedding(engine: OnnxViewEngine | None, device: torch.device) -> AbstractContextManager[None]:
    """The heap the embed stage runs in (a local build's, or a Ray embedding actor's for its life). PyTorch on the
    CPU maps and frees every batch's activations anew: kept in glibc's heap, its embed stage took 3.7 s instead of
    6.2 s for 60 dev-pool models (docs/indexing.md). ONNX Runtime keeps its own arena and a GPU its own memory, so
    they build with the heap's defaults."""
    return heap_kept_for_reuse() if engine is None and device.type == "cpu" else nullcontext()


def build_index(
    request: BuildRequest,
    distributor: Distributor | None = None,
    on_shard: Callable[[int], None] | None = None,
) -> BuildReport:
    """Render and embed every shape of the pool that no earlier version or run has, then publish a new version
    (unless it would equal the current one); resumable, atomic. Every failure is a BuildError (one line)."""
    try:
        return _build(request, distributor, on_shard)
    except OSError as err:  # a folder that cannot be written, a full disk: the user's to fix, not a traceback
        raise BuildError(f"index build in {request.out} failed: {err}") from err


def _build(
    request: BuildRequest, distributor: Distributor | None, on_shard: Callable[[int], None] | None
) -> BuildReport:
    started = time.perf_counter()
    if not request.pool.is_dir():
        raise BuildError(f"pool {request.pool} is not a directory")
    if not request.weights.is_file():
        raise BuildError(f"weights {request.weights} not found")
    request.out.mkdir(parents=True, exist_ok=True)
    device = pick_device(request.device)
    model, header = load_amvml_for_inference(request.weights, device)
    check_model_fits_renderer(model, request.render)
    identity = BuildIdentity(
        str(request.pool.resolve()), request.render.identity(), file_checksum(request.weights), request.max_faces
    )

    listing = (
        scan_pool(request.pool, request.categories_csv)
        if request.shapes is None
        else PoolListing(shapes=request.shapes, skipped=())
    )
    log.info("pool %s: %d shapes, %d entries skipped", request.pool, len(listing.shapes), len(listing.skipped))
    sources = relative_sources(listing.shapes, request.pool)
    build_dir, lock = _prepare_build_dir(request, identity)
    try:
        store = ShardStore(build_dir)
        published = _reusable_version(request, identity)
        checksums = {r.shape_id: file_checksum(r.path) for r in listing.shapes}

        finished: dict[str, RowSource | FailedShape] = {}
        for shard_path, row, stored in store.read_records():
            if checksums.get(stored.record.shape_id) == stored.checksum:
                finished[stored.record.shape_id] = (
                    stored if isinstance(stored, FailedShape) else RowSource.in_shard(shard_path, row)
                )
        resumed = sum(1 for f in finished.values() if not isinstance(f, FailedShape))
        reusable: dict[str, RowSource] = {}
        if published is not None:
            for row, entry in enumerate(published.manifest.shapes):
                if checksums.get(entry.shape_id) == entry.checksum and entry.shape_id not in finished:
                    reusable[entry.shape_id] = RowSource.published(row)
        todo = [
            (record, checksums[record.shape_id])
            for record in listing.shapes
            if record.shape_id not in finished and record.shape_id not in reusable
        ]
        log.info(
            "%d shapes to embed, %d finished in an earlier run, %d unchanged in the current version",
            len(todo),
            len(finished),
            len(reusable),
        )

        times = StageTimes()
        if todo:
            distribute = distributor or local_distributor
            bar = tqdm(total=len(todo), unit="shape", desc=f"indexing on {device}", disable=not request.progress)
            failures_so_far = 0
            for shard, shard_times in distribute(todo, request, model, device):
                shard_path = store.write(shard)
                times.merge(shard_times)
                for position, shape in enumerate(shard.embedded):
                    finished[shape.record.shape_id] = RowSource.in_shard(shard_path, position)
                for failure in shard.failed:
                    finished[failure.record.shape_id] = failure
                failures_so_far += len(shard.failed)
                bar.update(len(shard.embedded) + len(shard.failed))
                bar.set_postfix(failed=failures_so_far, views=times.counts["views"])
                if on_shard is not None:
                    on_shard(len(finished))
            bar.close()

        rows: list[tuple[ShapeEntry, RowSource]] = []
        failures = [FailedEntry(source_path=str(s.path), reason=s.reason) for s in listing.skipped]
        for record in listing.shapes:
            sid = record.shape_id
            done = reusable.get(sid) or finished[sid]
            if isinstance(done, FailedShape):
                failures.append(FailedEntry(source_path=str(record.path), reason=done.reason, checksum=done.checksum))
                continue
            entry = ShapeEntry(
                shape_id=sid,
                source_path=sources[sid],
                category=record.category,
                checksum=checksums[sid],
                thumbnail=f"{layout.THUMBNAILS}/{thumbnail_name(sid)}",
            )
            rows.append((entry, done))
        if not rows:
            raise BuildError(f"no shape of {request.pool} could be indexed ({len(failures)} failed)")

        plan = VersionPlan(
            out=request.out,
            rows=rows,
            failures=failures,
            header=header,
            weights=request.weights,
            pool_root=identity.pool,
            render=request.render,
            search=request.search,
            max_faces=request.max_faces,
            categories_csv=request.categories_csv,
            embedding_dim=vector_dim(model.config),
            view_embedding_dim=model.config.embedding_dim,
            published=published,
            shard_thumbnails=store.thumbnail_dir,
        )
        if published is not None and plan.same_as(published.manifest):
            os.close(lock)
            lock = -1
            shutil.rmtree(build_dir, ignore_errors=True)
            log.info("nothing changed since %s: no new version published", published.name)
            return BuildReport(
                published.directory,
                len(rows),
                0,
                len(reusable),
                0,
                failures,
                time.perf_counter() - started,
                times,
                published.manifest.approximate_recall_at_10,
                published=False,
            )
        start = time.perf_counter()
        version_dir, recall = write_version(plan)
        times.index += time.perf_counter() - start
        del plan, published  # the old version's lease: pruning below may remove it
        layout.publish(request.out, version_dir)
        _prune(request)
        if request.mesh_cache:
            MeshCache(request.out / layout.MESH_CACHE, "").keep_only(checksums.values())
    finally:
        if lock >= 0:
            os.close(lock)
    shutil.rmtree(build_dir, ignore_errors=True)
    report = BuildReport(
        version_dir=version_dir,
        shapes=len(rows),
        embedded_now=times.counts["shapes"],
        reused=len(reusable),
        resumed=resumed,
        failures=failures,
        seconds=time.perf_counter() - started,
        times=times,
        recall_at_10=recall,
    )
    log.info(
        "published %s: %d shapes (%d embedded now, %d reused), %d failed, %.1f s",
        version_dir.name,
        report.shapes,
        report.embedded_now,
        report.reused,
        len(failures),
        report.seconds,
    )
    return report


def _prune(request: BuildRequest) -> None:
    from photo2cad.indexer.verify import verify_version

    removed = layout.prune_versions(
        request.out, keep=request.keep_versions, validates=lambda v: not verify_version(v, check_sources=False)
    )
    for old in removed:
        log.info("pruned the old version %s", old.name)


def update_request(root: Path, weights: Path | None = None, **overrides: object) -> BuildRequest:
    """A build request that redoes the current version's build with reuse of unchanged shapes."""
    manifest = open_index(root).manifest
    request = BuildRequest(
        pool=Path(manifest.pool_root),
        out=root,
        weights=weights or Path(manifest.weights.path),
        categories_csv=Path(manifest.categories_csv) if manifest.categories_csv else None,
        render=manifest.render,
        search=manifest.search_config(),
        max_faces=manifest.max_faces,
    )
    return replace(request, **overrides)  # type: ignore[arg-type]


def update_index(root: Path, weights: Path | None = None, **overrides: object) -> BuildReport:
    """Bring the index in `root` up to date with its pool: new files embedded, changed ones (by checksum) embedded
    again, deleted ones dropped, unchanged ones reused; with other `weights`, everything is embedded again; with
    another `search`, the vectors are indexed again without rendering. Publishes nothing when nothing changed."""
    return build_index(update_request(root, weights, **overrides))


def ensure_index(request: BuildRequest) -> IndexVersion:
    """The current version of `request.out` when it was built from the same pool, weights, renderer settings and
    face budget, else a new build of it."""
    if layout.has_index(request.out):
        current = open_index(request.out)
        identity = BuildIdentity(
            str(request.pool.resolve()), request.render.identity(), file_checksum(request.weights), request.max_faces
        )
        if current.manifest.pool_root == identity.pool and identity.matches(current.manifest):
            log.info("reusing the index in %s", request.out)
            return current
        log.info("the index in %s was built from another pool, weights or renderer settings: rebuilding", request.out)
    build_index(request)
    return open_index(request.out)
