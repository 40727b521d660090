"""The work on one batch of shapes: load and normalise, render, embed. Failures are data, not exceptions.

Rendering and embedding are separate functions so that a distributed runner can put them on different workers
(rendering on CPUs, embedding on GPU actors); the local runner simply calls one after the other.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from photo2cad.indexer.shards import EmbeddedShape, FailedShape
from photo2cad.models import AMVML
from photo2cad.models.embedding import embed_view_sets
from photo2cad.shapes.meshes import MeshLoadError, load_mesh, normalise
from photo2cad.shapes.pool import ShapeRecord
from photo2cad.shapes.render import Renderer
from photo2cad.shapes.settings import RenderSettings

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = 160


@dataclass
class StageTimes:
    """Seconds spent per stage, summed over a run (the benchmark's split)."""

    load: float = 0.0
    render: float = 0.0
    embed: float = 0.0
    index: float = 0.0
    counts: dict[str, int] = field(default_factory=lambda: {"shapes": 0, "views": 0})

    def merge(self, other: StageTimes) -> None:
        self.load += other.load
        self.render += other.render
        self.embed += other.embed
        self.index += other.index
        for key, value in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + value


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


def render_shapes(
    items: Sequence[tuple[ShapeRecord, str]], renderer: Renderer, settings: RenderSettings, times: StageTimes
) -> tuple[list[RenderedShape], list[FailedShape]]:
    rendered: list[RenderedShape] = []
    failed: list[FailedShape] = []
    for record, checksum in items:
        start = time.perf_counter()
        try:
            mesh = normalise(load_mesh(record.path))
        except MeshLoadError as err:
            failed.append(FailedShape(record, checksum, err.reason))
            log.warning("skipped %s: %s", record.path, err.reason)
            continue
        finally:
            times.load += time.perf_counter() - start
        start = time.perf_counter()
        try:
            views = renderer.render(mesh, settings.embed_size, passes=("grey",))
        except Exception as err:  # noqa: BLE001 - one bad mesh must never end a long build
            failed.append(FailedShape(record, checksum, f"rendering failed: {type(err).__name__}: {err}"))
            log.warning("skipped %s: rendering failed: %s", record.path, err)
            continue
        finally:
            times.render += time.perf_counter() - start
        assert views.grey is not None
        rendered.append(RenderedShape(record, checksum, views.grey, thumbnail(views.grey)))
        times.counts["views"] += len(views.grey)
    return rendered, failed


def embed_shapes(
    rendered: Sequence[RenderedShape], model: AMVML, device: torch.device, times: StageTimes
) -> list[EmbeddedShape]:
    if not rendered:
        return []
    start = time.perf_counter()
    grey = np.stack([r.grey_views for r in rendered])
    vectors, view_embeddings = embed_view_sets(model, grey, device, batch_shapes=len(rendered))
    times.embed += time.perf_counter() - start
    times.counts["shapes"] += len(rendered)
    return [
        EmbeddedShape(r.record, r.checksum, vectors[i], view_embeddings[i], r.thumbnail_jpeg)
        for i, r in enumerate(rendered)
    ]
