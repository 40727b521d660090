"""The work on shapes: prepare a mesh (load, simplify, normalise), render its views, embed them. Failures are data,
not exceptions.

Rendering and embedding are separate functions so that a runner can put them on different workers: the local
runner renders the next batch on a thread of its own while the network embeds this one (`pipelined_shards`), the
Ray runner on separate actors.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import torch
import trimesh
from PIL import Image

from photo2cad.indexer.mesh_cache import MeshCache
from photo2cad.indexer.shards import EmbeddedShape, FailedShape, Shard
from photo2cad.models import AMVML
from photo2cad.models.embedding import embed_view_sets
from photo2cad.models.onnx_views import OnnxViewEngine
from photo2cad.shapes.meshes import MeshLoadError, load_mesh, normalise, simplify
from photo2cad.shapes.pool import ShapeRecord
from photo2cad.shapes.render import Renderer
from photo2cad.shapes.settings import RenderSettings

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 160
# Simplification may move the surface by at most this many pixels of a view (the object spans at most the frame).
SIMPLIFY_ERROR_PX = 0.5


@dataclass
class StageTimes:
    """Seconds spent per stage, summed over a run (the benchmark's split). With the pipelined runner, rendering
    (load .. render) and embedding overlap: their sum exceeds the wall time."""

    load: float = 0.0
    simplify: float = 0.0
    normalise: float = 0.0
    render: float = 0.0
    embed: float = 0.0
    index: float = 0.0
    counts: dict[str, int] = field(default_factory=lambda: {"shapes": 0, "views": 0, "faces_in": 0, "faces_drawn": 0})

    STAGES = ("load", "simplify", "normalise", "render", "embed", "index")

    def merge(self, other: StageTimes) -> None:
        for stage in self.STAGES:
            setattr(self, stage, getattr(self, stage) + getattr(other, stage))
        for key, value in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + value

    def merge_seconds(self, seconds: dict[str, float]) -> None:
        for stage, value in seconds.items():
            setattr(self, stage, getattr(self, stage) + value)

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in self.STAGES}


@dataclass(frozen=True)
class MeshPreparation:
    """How a pool file becomes the mesh that is drawn: simplified to `max_faces` (None: every face) within
    `max_error` of its largest extent, then normalised."""

    max_faces: int | None
    max_error: float

    @classmethod
    def for_views(cls, max_faces: int | None, settings: RenderSettings) -> MeshPreparation:
        return cls(max_faces, SIMPLIFY_ERROR_PX / settings.embed_size)

    @property
    def variant(self) -> str:
        return "all" if self.max_faces is None else f"f{self.max_faces}-e{self.max_error:.6f}"


@dataclass(frozen=True)
class RenderedShape:
    record: ShapeRecord
    checksum: str
    grey_views: np.ndarray  # (V, S, S, 3) uint8
    thumbnail_jpeg: bytes


def thumbnail(grey_views: np.ndarray) -> bytes:
    """A JPEG of a three-quarter view (the second view when there are several: azimuth 30 degrees at 12 views)."""
    view = grey_views[1 if len(grey_views) > 1 else 0]
    image = Image.fromarray(view).resize((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def prepare_mesh(
    record: ShapeRecord, checksum: str, preparation: MeshPreparation, cache: MeshCache | None, times: StageTimes
) -> trimesh.Trimesh:
    """The mesh to draw for one pool file: from the cache when this file was prepared before, else loaded,
    simplified and normalised (and cached). Raises MeshLoadError."""
    start = time.perf_counter()
    cached = cache.get(checksum) if cache is not None else None
    if cached is not None:
        times.load += time.perf_counter() - start
        times.counts["faces_drawn"] += len(cached.faces)
        return cached
    mesh = load_mesh(record.path)
    loaded = time.perf_counter()
    times.load += loaded - start
    times.counts["faces_in"] += len(mesh.faces)
    if preparation.max_faces is not None:
        mesh = simplify(mesh, preparation.max_faces, preparation.max_error)
    simplified = time.perf_counter()
    times.simplify += simplified - loaded
    mesh = normalise(mesh)
    # float32, as the GL draws it and the cache keeps it: a cached mesh renders exactly as a fresh one.
    mesh = trimesh.Trimesh(vertices=np.asarray(mesh.vertices, np.float32), faces=mesh.faces, process=False)
    times.normalise += time.perf_counter() - simplified
    times.counts["faces_drawn"] += len(mesh.faces)
    if cache is not None:
        cache.put(checksum, mesh)
    return mesh


def render_shapes(
    items: Sequence[tuple[ShapeRecord, str]],
    renderer: Renderer,
    settings: RenderSettings,
    times: StageTimes,
    preparation: MeshPreparation | None = None,
    cache: MeshCache | None = None,
) -> tuple[list[RenderedShape], list[FailedShape]]:
    preparation = preparation or MeshPreparation(None, 0.0)
    rendered: list[RenderedShape] = []
    failed: list[FailedShape] = []
    for record, checksum in items:
        try:
            mesh = prepare_mesh(record, checksum, preparation, cache, times)
        except MeshLoadError as err:
            failed.append(FailedShape(record, checksum, err.reason))
            log.warning("skipped %s: %s", record.path, err.reason)
            continue
        start = time.perf_counter()
        try:
            views = renderer.render(mesh, settings.embed_size, passes=("grey",))
            assert views.grey is not None
            rendered.append(RenderedShape(record, checksum, views.grey, thumbnail(views.grey)))
        except Exception as err:  # noqa: BLE001 - one bad mesh must never end a long build
            failed.append(FailedShape(record, checksum, f"rendering failed: {type(err).__name__}: {err}"))
            log.warning("skipped %s: rendering failed: %s", record.path, err)
            continue
        finally:
            times.render += time.perf_counter() - start
        times.counts["views"] += len(views.grey)
    return rendered, failed


def embed_shapes(
    rendered: Sequence[RenderedShape],
    model: AMVML,
    device: torch.device,
    times: StageTimes,
    engine: OnnxViewEngine | None = None,
) -> list[EmbeddedShape]:
    if not rendered:
        return []
    start = time.perf_counter()
    grey = np.stack([r.grey_views for r in rendered])
    vectors, view_embeddings = embed_view_sets(model, grey, device, batch_shapes=len(rendered), engine=engine)
    times.embed += time.perf_counter() - start
    times.counts["shapes"] += len(rendered)
    return [
        EmbeddedShape(r.record, r.checksum, vectors[i], view_embeddings[i], r.thumbnail_jpeg)
        for i, r in enumerate(rendered)
    ]


RenderedBatch = tuple[list[RenderedShape], list[FailedShape], StageTimes]


def pipelined_shards(
    batches: Sequence[Sequence[tuple[ShapeRecord, str]]],
    render_batch: Callable[[Renderer, Sequence[tuple[ShapeRecord, str]]], RenderedBatch],
    make_renderer: Callable[[], Renderer],
    embed: Callable[[list[RenderedShape], StageTimes], list[EmbeddedShape]],
    ahead: int = 2,
) -> Iterator[tuple[Shard, StageTimes]]:
    """Render batches on a thread of its own (it owns the GL context) while this thread embeds: the two stages
    overlap, so both CPU cores stay busy. At most `ahead` rendered batches wait for the network."""
    ready: queue.Queue[RenderedBatch | BaseException | None] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def offer(item: RenderedBatch | BaseException | None) -> None:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            with make_renderer() as renderer:
                for batch in batches:
                    if stop.is_set():
                        return
                    offer(render_batch(renderer, batch))
            offer(None)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, which raises it
            offer(err)

    worker = threading.Thread(target=produce, name="photo2cad-render", daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            rendered, failed, times = item
            yield Shard(embed(rendered, times), failed), times
    finally:
        stop.set()
        worker.join()
