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
from typing import Any

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


@dataclass(frozen=True)
class PreparedShape:
    record: ShapeRecord
    checksum: str
    mesh: trimesh.Trimesh


def prepare_shapes(
    items: Sequence[tuple[ShapeRecord, str]],
    preparation: MeshPreparation,
    cache: MeshCache | None,
    times: StageTimes,
) -> tuple[list[PreparedShape], list[FailedShape]]:
    prepared: list[PreparedShape] = []
    failed: list[FailedShape] = []
    for record, checksum in items:
        try:
            prepared.append(PreparedShape(record, checksum, prepare_mesh(record, checksum, preparation, cache, times)))
        except MeshLoadError as err:
            failed.append(FailedShape(record, checksum, err.reason))
            log.warning("skipped %s: %s", record.path, err.reason)
    return prepared, failed


def draw_shapes(
    prepared: Sequence[PreparedShape], renderer: Renderer, settings: RenderSettings, times: StageTimes
) -> tuple[list[RenderedShape], list[FailedShape]]:
    rendered: list[RenderedShape] = []
    failed: list[FailedShape] = []
    for shape in prepared:
        start = time.perf_counter()
        try:
            views = renderer.render(shape.mesh, settings.embed_size, passes=("grey",))
            assert views.grey is not None
            rendered.append(RenderedShape(shape.record, shape.checksum, views.grey, thumbnail(views.grey)))
            times.counts["views"] += len(views.grey)
        except Exception as err:  # noqa: BLE001 - one bad mesh must never end a long build
            failed.append(FailedShape(shape.record, shape.checksum, f"rendering failed: {type(err).__name__}: {err}"))
            log.warning("skipped %s: rendering failed: %s", shape.record.path, err)
        finally:
            times.render += time.perf_counter() - start
    return rendered, failed


def render_shapes(
    items: Sequence[tuple[ShapeRecord, str]],
    renderer: Renderer,
    settings: RenderSettings,
    times: StageTimes,
    preparation: MeshPreparation | None = None,
    cache: MeshCache | None = None,
) -> tuple[list[RenderedShape], list[FailedShape]]:
    """prepare_shapes then draw_shapes, on the calling thread (the GL context's)."""
    prepared, failed = prepare_shapes(items, preparation or MeshPreparation(None, 0.0), cache, times)
    rendered, failed_drawing = draw_shapes(prepared, renderer, settings, times)
    return rendered, failed + failed_drawing


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
    categories = [r.record.category for r in rendered]
    vectors, view_embeddings = embed_view_sets(model, grey, device, len(rendered), engine, categories)
    times.embed += time.perf_counter() - start
    times.counts["shapes"] += len(rendered)
    return [
        EmbeddedShape(r.record, r.checksum, vectors[i], view_embeddings[i], r.thumbnail_jpeg)
        for i, r in enumerate(rendered)
    ]


PreparedBatch = tuple[list[PreparedShape], list[FailedShape], StageTimes]
RenderedBatch = tuple[list[RenderedShape], list[FailedShape], StageTimes]


class _Handoff:
    """A bounded queue between two pipeline threads that gives up when the pipeline stops."""

    def __init__(self, size: int, stop: threading.Event) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=size)
        self._stop = stop

    def put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def get(self) -> Any:
        while not self._stop.is_set():
            try:
                return self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
        return None


def pipelined_shards(
    batches: Sequence[Sequence[tuple[ShapeRecord, str]]],
    prepare_batch: Callable[[Sequence[tuple[ShapeRecord, str]]], PreparedBatch],
    draw_batch: Callable[[Renderer, PreparedBatch], RenderedBatch],
    make_renderer: Callable[[], Renderer],
    embed: Callable[[list[RenderedShape], StageTimes], list[EmbeddedShape]],
    ahead: int = 2,
) -> Iterator[tuple[Shard, StageTimes]]:
    """Three stages on three threads, so that both CPU cores stay busy: meshes are loaded and simplified (Python,
    under the GIL) while the previous batch is drawn (in the GL driver, outside it) while the one before that is
    embedded (ONNX Runtime or PyTorch, outside it). The drawing thread owns the GL context. At most `ahead`
    batches wait between two stages."""
    stop = threading.Event()
    prepared, rendered = _Handoff(ahead, stop), _Handoff(ahead, stop)

    def prepare() -> None:
        try:
            for batch in batches:
                prepared.put(prepare_batch(batch))
            prepared.put(None)
        except BaseException as err:  # noqa: BLE001 - handed on to the consumer, which raises it
            prepared.put(err)

    def draw() -> None:
        try:
            with make_renderer() as renderer:
                while (item := prepared.get()) is not None and not isinstance(item, BaseException):
                    rendered.put(draw_batch(renderer, item))
            rendered.put(item)
        except BaseException as err:  # noqa: BLE001 - handed on to the consumer, which raises it
            rendered.put(err)

    workers = [
        threading.Thread(target=prepare, name="photo2cad-prepare", daemon=True),
        threading.Thread(target=draw, name="photo2cad-render", daemon=True),
    ]
    for worker in workers:
        worker.start()
    try:
        while (item := rendered.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            shapes, failed, times = item
            yield Shard(embed(shapes, times), failed), times
    finally:
        stop.set()
        for worker in workers:
            worker.join()
