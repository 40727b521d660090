"""Aligned (normal map, textured render) pairs of a dataset's shapes for TSM training, cached on disk.

The textured render uses the shape file's own materials (textures, colours) through the shaded renderer, from the
same cameras as the normal maps, so both images show the same pixels of the same shape.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from photo2cad.models.training.tsm_trainer import TexturePairs
from photo2cad.shapes.cache import cached_renders
from photo2cad.shapes.meshes import load_mesh, normalise
from photo2cad.shapes.pool import ShapeRecord
from photo2cad.shapes.render import Renderer, camera_poses
from photo2cad.shapes.settings import RenderSettings
from photo2cad.shapes.shaded import ShadedRenderer, load_textured


def render_texture_pairs(
    shapes: Sequence[ShapeRecord],
    categories: Sequence[str],
    settings: RenderSettings,
    cache_dir: Path,
    views_per_shape: int | None = None,
    progress: bool = True,
) -> TexturePairs:
    size = settings.synth_size
    poses = camera_poses(settings)
    chosen_views = np.arange(settings.num_views)[: views_per_shape or settings.num_views]
    with ExitStack() as resources:
        grey_renderer = functools.cache(lambda: resources.enter_context(Renderer(settings)))
        shaded_renderer = functools.cache(lambda: resources.enter_context(ShadedRenderer(size, settings.yfov_deg)))

        def render(shape: ShapeRecord) -> dict[str, np.ndarray]:
            mesh = normalise(load_mesh(shape.path))
            scene = load_textured(shape.path)
            normal_maps = grey_renderer().render(mesh, size, passes=("normals",)).normals
            assert normal_maps is not None
            colour = np.stack([shaded_renderer().render(scene, poses[v])[0] for v in chosen_views])
            return {"normals": normal_maps[chosen_views], "textured": colour}

        pairs = cached_renders(
            shapes,
            cache_dir / f"pairs-{settings.identity()}",
            render,
            str(len(chosen_views)),
            "rendering texture pairs",
            progress,
        )
    if not pairs.shape_ids:
        raise ValueError("no texture pairs could be rendered")
    category_of = {shape.shape_id: shape.category for shape in shapes}
    labels = [categories.index(c) if (c := category_of[sid]) in categories else -1 for sid in pairs.shape_ids]
    normals, textured = pairs.arrays["normals"], pairs.arrays["textured"]
    return TexturePairs(
        normals.reshape(-1, *normals.shape[2:]),
        textured.reshape(-1, *textured.shape[2:]),
        np.repeat(np.array(labels), len(chosen_views)),
        tuple(categories),
    )
