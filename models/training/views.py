"""Rendered views of a dataset's shapes, made once and cached on disk (one file per shape and renderer identity).

Training reads every shape's views many times; rendering them once per run would dominate a CPU epoch.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from photo2cad.shapes.meshes import MeshLoadError, file_checksum, load_mesh, normalise
from photo2cad.shapes.pool import ShapeRecord
from photo2cad.shapes.render import Renderer
from photo2cad.shapes.settings import RenderSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShapeViews:
    """Views of the shapes that rendered; row i belongs to shape_ids[i]."""

    shape_ids: tuple[str, ...]
    grey: np.ndarray  # (N, V, S, S, 3) uint8, S = embed_size
    masks: np.ndarray  # (N, V, S, S) bool
    normals: np.ndarray | None  # (N, V, T, T, 3) uint8, T = synth_size, when asked for
    failed: tuple[tuple[str, str], ...]  # (shape_id, reason)

    def row(self, shape_id: str) -> int:
        return self.shape_ids.index(shape_id)


def save_npz_atomically(path: Path, **arrays: np.ndarray) -> None:
    """A cache file appears whole or not at all: an interrupted run re-renders that shape instead of reading junk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    payload: dict[str, Any] = dict(arrays)  # numpy's stub types **kwds against its own keyword options
    np.savez_compressed(partial, **payload)
    partial.replace(path)


def _cache_file(cache_dir: Path, settings: RenderSettings, shape: ShapeRecord, with_normals: bool) -> Path:
    key = hashlib.sha256(f"{shape.shape_id}|{file_checksum(shape.path)}|{with_normals}".encode()).hexdigest()[:24]
    return cache_dir / settings.identity() / f"{key}.npz"


def render_views(
    shapes: Sequence[ShapeRecord],
    settings: RenderSettings,
    cache_dir: Path,
    with_normals: bool = False,
    progress: bool = True,
) -> ShapeViews:
    """Grey views and masks at embed_size (and normal maps at synth_size) of every shape; broken ones are listed."""
    grey, masks, normals, ids, failed = [], [], [], [], []
    renderer: Renderer | None = None
    try:
        for shape in tqdm(shapes, desc="rendering views", unit="shape", disable=not progress):
            path = _cache_file(cache_dir, settings, shape, with_normals)
            if not path.is_file():
                if renderer is None:
                    renderer = Renderer(settings)
                try:
                    mesh = normalise(load_mesh(shape.path))
                except MeshLoadError as err:
                    failed.append((shape.shape_id, str(err)))
                    continue
                views = renderer.render(mesh, settings.embed_size, passes=("grey", "mask"))
                arrays: dict[str, Any] = {"grey": views.grey, "masks": views.masks}
                if with_normals:
                    arrays["normals"] = renderer.render(mesh, settings.synth_size, passes=("normals",)).normals
                save_npz_atomically(path, **arrays)
            with np.load(path) as data:
                grey.append(data["grey"])
                masks.append(data["masks"])
                if with_normals:
                    normals.append(data["normals"])
            ids.append(shape.shape_id)
    finally:
        if renderer is not None:
            renderer.close()
    if failed:
        log.warning("%d shapes could not be rendered and are left out, e.g. %s", len(failed), failed[:3])
    if not ids:
        raise ValueError("no shape of the dataset could be rendered")
    return ShapeViews(
        tuple(ids), np.stack(grey), np.stack(masks), np.stack(normals) if with_normals else None, tuple(failed)
    )
