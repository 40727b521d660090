"""The grey views (and normal maps) of a dataset's shapes, cached on disk per renderer identity."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photo2cad.shapes.cache import cached_renders
from photo2cad.shapes.meshes import load_mesh, normalise
from photo2cad.shapes.pool import ShapeRecord
from photo2cad.shapes.render import Renderer
from photo2cad.shapes.settings import RenderSettings


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


def render_views(
    shapes: Sequence[ShapeRecord],
    settings: RenderSettings,
    cache_dir: Path,
    with_normals: bool = False,
    progress: bool = True,
) -> ShapeViews:
    """Grey views and masks at embed_size (and normal maps at synth_size) of every shape; broken ones are listed."""
    with ExitStack() as resources:
        renderer = functools.cache(lambda: resources.enter_context(Renderer(settings)))  # made only when needed

        def render(shape: ShapeRecord) -> dict[str, np.ndarray]:
            mesh = normalise(load_mesh(shape.path))
            views = renderer().render(mesh, settings.embed_size, passes=("grey", "mask"))
            arrays = {"grey": views.grey, "masks": views.masks}
            if with_normals:
                arrays["normals"] = renderer().render(mesh, settings.synth_size, passes=("normals",)).normals
            return {name: array for name, array in arrays.items() if array is not None}

        rendered = cached_renders(
            shapes, cache_dir / settings.identity(), render, str(with_normals), "rendering views", progress
        )
    if not rendered.shape_ids:
        raise ValueError("no shape of the dataset could be rendered")
    arrays = rendered.arrays
    return ShapeViews(rendered.shape_ids, arrays["grey"], arrays["masks"], arrays.get("normals"), rendered.failed)
