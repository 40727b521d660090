"""Build, update, verify and describe an index directory: the local runner over reader, mapper and writer."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from photo2cad.device import pick_device
from photo2cad.errors import Photo2CadError
from photo2cad.indexer import layout
from photo2cad.indexer.manifest import FailedEntry, IndexCounts, Manifest, ShapeEntry, WeightsIdentity
from photo2cad.indexer.mapper import StageTimes, embed_shapes, render_shapes
from photo2cad.indexer.shards import EmbeddedShape, FailedShape, Shard, ShardStore, thumbnail_name
from photo2cad.indexer.vector_search import IndexKind, VectorSearch, recall_at_k
from photo2cad.indexer.verify import verify_version
from photo2cad.indexer.version import IndexVersion, open_index
from photo2cad.models import AMVML
from photo2cad.shapes.meshes import file_checksum
from photo2cad.shapes.pool import PoolListing, ShapeRecord, scan_pool
from photo2cad.shapes.render import Renderer
from photo2cad.shapes.settings import RenderSettings
from photo2cad.weights.checkpoint import CheckpointHeader, load_amvml

log = logging.getLogger(__name__)


class BuildError(Photo2CadError):
    """A build cannot start or cannot finish; the published index is untouched."""


@dataclass(frozen=True)
class BuildRequest:
    pool: Path
    out: Path
    weights: Path
    categories_csv: Path | None = None
    render: RenderSettings = field(default_factory=RenderSettings)
    index_kind: IndexKind = "exact"
    batch_size: int = 8
    device: str = "auto"
    resume: bool = True
    reuse_published: bool = False  # `update`: take unchanged shapes from the current version
    shapes: tuple[ShapeRecord, ...] | None = None  # an explicit pool (a dataset's) instead of scanning `pool`
    progress: bool = True
    keep_versions: int = 2


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


@dataclass(frozen=True)
class ShapeRow:
    """One shape of the finished index, wherever its vectors came from."""

    entry: ShapeEntry
    vector: np.ndarray
    view_embeddings: np.ndarray
    thumbnail_source: Path


def weights_identity(path: Path, header: CheckpointHeader) -> WeightsIdentity:
    return WeightsIdentity(
        path=str(path),
        sha256=file_checksum(path),
        architecture=header.architecture,
        backbone=str(header.config.get("backbone")),
        training_data=header.training_data,
        created_at=header.created_at,
    )


def check_model_fits_renderer(model: AMVML, render: RenderSettings) -> None:
    if model.config.image_size != render.embed_size:
        raise BuildError(
            f"the weights expect {model.config.image_size} px views but the renderer makes {render.embed_size} px"
        )


@dataclass(frozen=True)
class _BuildIdentity:
    pool: str
    render_identity: str
    weights_sha256: str

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def _relative_source(path: Path, pool: Path) -> str:
    try:
        return str(path.resolve().relative_to(pool.resolve()))
    except ValueError as err:
        raise BuildError(f"{path} lies outside the pool {pool}") from err


def _batches(items: Sequence[tuple[ShapeRecord, str]], size: int) -> Iterator[Sequence[tuple[ShapeRecord, str]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _lock(build_dir: Path) -> int:
    handle = os.open(build_dir / "lock", os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as err:
        os.close(handle)
        raise BuildError(f"another build is running on {build_dir.parent}") from err
    return handle


def _prepare_build_dir(request: BuildRequest, identity: _BuildIdentity) -> tuple[Path, int]:
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


def _published_rows(request: BuildRequest, identity: _BuildIdentity) -> dict[str, ShapeRow]:
    """Rows of the current version that an update may reuse (same renderer and weights)."""
    if not request.reuse_published or not layout.has_index(request.out):
        return {}
    current = open_index(request.out)
    manifest = current.manifest
    if manifest.render_identity != identity.render_identity or manifest.weights.sha256 != identity.weights_sha256:
        log.info("renderer or weights changed since the current version: every shape is embedded again")
        return {}
    return {
        entry.shape_id: ShapeRow(
            entry,
            current.vectors[row],
            np.asarray(current.view_embeddings[row], dtype=np.float32),
            current.directory / entry.thumbnail,
        )
        for row, entry in enumerate(manifest.shapes)
    }


Distributor = Callable[
    [Sequence[tuple[ShapeRecord, str]], "BuildRequest", AMVML, torch.device], Iterator[tuple[Shard, StageTimes]]
]


def local_distributor(
    todo: Sequence[tuple[ShapeRecord, str]], request: BuildRequest, model: AMVML, device: torch.device
) -> Iterator[tuple[Shard, StageTimes]]:
    """One process: one renderer and the model, batch after batch."""
    with Renderer(request.render) as renderer:
        for batch in _batches(todo, request.batch_size):
            times = StageTimes()
            rendered, failed = render_shapes(batch, renderer, request.render, times)
            yield Shard(embed_shapes(rendered, model, device, times), failed), times


def build_index(
    request: BuildRequest,
    distributor: Distributor | None = None,
    on_shard: Callable[[int], None] | None = None,
) -> BuildReport:
    """Render and embed every shape of the pool, then publish a new version; resumable, atomic."""
    started = time.perf_counter()
    request.out.mkdir(parents=True, exist_ok=True)
    if not request.pool.is_dir():
        raise BuildError(f"pool {request.pool} is not a directory")
    device = pick_device(request.device)
    model, header = load_amvml(request.weights, device)
    check_model_fits_renderer(model, request.render)
    identity = _BuildIdentity(str(request.pool.resolve()), request.render.identity(), file_checksum(request.weights))

    listing = (
        scan_pool(request.pool, request.categories_csv)
        if request.shapes is None
        else PoolListing(shapes=request.shapes, skipped=())
    )
    log.info("pool %s: %d shapes, %d entries skipped", request.pool, len(listing.shapes), len(listing.skipped))
    build_dir, lock = _prepare_build_dir(request, identity)
    try:
        store = ShardStore(build_dir)
        published = _published_rows(request, identity)
        checksums = {r.shape_id: file_checksum(r.path) for r in listing.shapes}

        finished: dict[str, EmbeddedShape | FailedShape] = {}
        for shard in store.read_all():
            for done in shard.finished():
                if checksums.get(done.record.shape_id) == done.checksum:
                    finished[done.record.shape_id] = done
        reusable = {
            sid: row
            for sid, row in published.items()
            if checksums.get(sid) == row.entry.checksum and sid not in finished
        }
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
                store.write(shard)
                times.merge(shard_times)
                for done in shard.finished():
                    finished[done.record.shape_id] = done
                failures_so_far += len(shard.failed)
                bar.update(len(shard.embedded) + len(shard.failed))
                bar.set_postfix(failed=failures_so_far, views=times.counts["views"])
                if on_shard is not None:
                    on_shard(len(finished))
            bar.close()

        rows: list[ShapeRow] = []
        failures = [FailedEntry(source_path=str(s.path), reason=s.reason) for s in listing.skipped]
        for record in listing.shapes:
            sid = record.shape_id
            if sid in reusable:
                rows.append(reusable[sid])
                continue
            done = finished[sid]
            if isinstance(done, FailedShape):
                failures.append(FailedEntry(source_path=str(record.path), reason=done.reason, checksum=done.checksum))
                continue
            entry = ShapeEntry(
                shape_id=sid,
                source_path=_relative_source(record.path, request.pool),
                category=record.category,
                checksum=done.checksum,
                thumbnail=f"{layout.THUMBNAILS}/{thumbnail_name(sid)}",
            )
            rows.append(
                ShapeRow(entry, done.shape_vector, done.view_embeddings, store.thumbnail_dir / thumbnail_name(sid))
            )
        if not rows:
            raise BuildError(f"no shape of {request.pool} could be indexed ({len(failures)} failed)")

        start = time.perf_counter()
        version_dir, recall = _write_version(request, rows, failures, header, identity, renderer_name=None)
        times.index += time.perf_counter() - start
        layout.publish(request.out, version_dir)
        layout.prune_versions(request.out, keep=request.keep_versions)
    finally:
        os.close(lock)
    shutil.rmtree(build_dir, ignore_errors=True)
    report = BuildReport(
        version_dir=version_dir,
        shapes=len(rows),
        embedded_now=times.counts["shapes"],
        reused=len(reusable),
        resumed=len(finished)
        - times.counts["shapes"]
        - sum(1 for f in finished.values() if isinstance(f, FailedShape)),
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


def _write_version(
    request: BuildRequest,
    rows: list[ShapeRow],
    failures: list[FailedEntry],
    header: CheckpointHeader,
    identity: _BuildIdentity,
    renderer_name: str | None,
) -> tuple[Path, float | None]:
    rows = sorted(rows, key=lambda r: r.entry.shape_id)
    vectors = np.stack([r.vector for r in rows]).astype(np.float32)
    view_embeddings = np.stack([r.view_embeddings for r in rows]).astype(np.float16)
    name = layout.new_version_name()
    staging = request.out / f".{name}.partial"
    staging.mkdir()
    (staging / layout.THUMBNAILS).mkdir()
    for row in rows:
        shutil.copyfile(row.thumbnail_source, staging / row.entry.thumbnail)
    np.save(staging / layout.VECTORS, vectors)
    np.save(staging / layout.VIEW_EMBEDDINGS, view_embeddings)
    index = VectorSearch.build(vectors, request.index_kind)
    index.save(staging / layout.FAISS_FILE)
    recall = None
    if request.index_kind != "exact":
        recall = recall_at_k(index, VectorSearch.build(vectors, "exact"), vectors[: min(len(vectors), 1000)], k=10)
        log.info("%s index recall@10 against exact search: %.3f", request.index_kind, recall)
    manifest = Manifest(
        version=name,
        pool_root=identity.pool,
        categories_csv=str(request.categories_csv.resolve()) if request.categories_csv else None,
        render=request.render,
        render_identity=identity.render_identity,
        gl_renderer=renderer_name,
        weights=weights_identity(request.weights.resolve(), header),
        embedding_dim=vectors.shape[1],
        index_kind=request.index_kind,
        approximate_recall_at_10=recall,
        counts=IndexCounts(shapes=len(rows), failed=len(failures), views=len(rows) * view_embeddings.shape[1]),
        shapes=[r.entry for r in rows],
        failures=failures,
    )
    manifest.write(staging)
    problems = verify_version(staging, check_sources=False)
    if problems:
        shutil.rmtree(staging)
        raise BuildError("the new index failed validation: " + "; ".join(problems))
    version_dir = request.out / name
    staging.rename(version_dir)
    return version_dir, recall


def update_request(root: Path, weights: Path | None = None, **overrides: object) -> BuildRequest:
    """A build request that redoes the current version's build with reuse of unchanged shapes."""
    current = open_index(root)
    manifest = current.manifest
    return BuildRequest(
        pool=Path(manifest.pool_root),
        out=root,
        weights=weights or Path(manifest.weights.path),
        categories_csv=Path(manifest.categories_csv) if manifest.categories_csv else None,
        render=manifest.render,
        index_kind=manifest.index_kind,
        reuse_published=True,
        **overrides,  # type: ignore[arg-type]
    )


def update_index(root: Path, weights: Path | None = None, **overrides: object) -> BuildReport:
    """Bring the index in `root` up to date with its pool: new files embedded, changed ones (by checksum) embedded
    again, deleted ones dropped, unchanged ones reused; with other `weights`, everything is embedded again."""
    return build_index(update_request(root, weights, **overrides))


def ensure_index(request: BuildRequest) -> IndexVersion:
    """The current version of `request.out` when it was built from the same pool, weights and renderer settings,
    else a new build of it."""
    if layout.has_index(request.out):
        current = open_index(request.out)
        manifest = current.manifest
        same = (
            manifest.pool_root == str(request.pool.resolve())
            and manifest.weights.sha256 == file_checksum(request.weights)
            and manifest.render_identity == request.render.identity()
        )
        if same:
            log.info("reusing the index in %s", request.out)
            return current
        log.info("the index in %s was built from another pool, weights or renderer settings: rebuilding", request.out)
    build_index(request)
    return open_index(request.out)
