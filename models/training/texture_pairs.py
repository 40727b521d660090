"""Aligned (normal map, textured render) pairs of a dataset's shapes for TSM training, cached on disk.

The textured render uses the shape file's own materials (textures, colours) through the shaded renderer, from the
same cameras as the normal maps, so both images show the same pixels of the same shape.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from photo2cad.models.training.tsm_trainer import TexturePairs
from photo2cad.models.training.views import save_npz_atomically
from photo2cad.shapes.meshes import MeshLoadError, file_checksum, load_mesh, normalise
from photo2cad.shapes.pool import ShapeRecord
from photo2cad.shapes.render import Renderer, camera_poses
from photo2cad.shapes.settings import RenderSettings

log = logging.getLogger(__name__)


def render_texture_pairs(
    shapes: Sequence[ShapeRecord],
    categories: Sequence[str],
    settings: RenderSettings,
    cache_dir: Path,
    views_per_shape: int | None = None,
    progress: bool = True,
) -> TexturePairs:
    from photo2cad.shapes.shaded import ShadedRenderer, load_textured

    size = settings.synth_size
    poses = camera_poses(settings)
    chosen_views = np.arange(settings.num_views)[: views_per_shape or settings.num_views]
    normals, textured, labels, failed = [], [], [], 0
    grey_renderer: Renderer | None = None
    shaded: ShadedRenderer | None = None
    try:
        for shape in tqdm(shapes, desc="rendering texture pairs", unit="shape", disable=not progress):
            key = hashlib.sha256(f"{shape.shape_id}|{file_checksum(shape.path)}|{len(chosen_views)}".encode())
            path = cache_dir / f"pairs-{settings.identity()}" / f"{key.hexdigest()[:24]}.npz"
            if not path.is_file():
                if grey_renderer is None:
                    grey_renderer = Renderer(settings)
                    shaded = ShadedRenderer(size, yfov_deg=settings.yfov_deg)
                assert shaded is not None
                try:
                    mesh = normalise(load_mesh(shape.path))
                    scene = load_textured(shape.path)
                except MeshLoadError as err:
                    log.warning("no texture pairs for %s: %s", shape.shape_id, err)
                    failed += 1
                    continue
                normal_maps = grey_renderer.render(mesh, size, passes=("normals",)).normals
                assert normal_maps is not None
                colour = np.stack([shaded.render(scene, poses[v])[0] for v in chosen_views])
                save_npz_atomically(path, normals=normal_maps[chosen_views], textured=colour)
            with np.load(path) as data:
                normals.append(data["normals"])
                textured.append(data["textured"])
            label = categories.index(shape.category) if shape.category in categories else -1
            labels.extend([label] * len(chosen_views))
    finally:
        if grey_renderer is not None:
            grey_renderer.close()
        if shaded is not None:
            shaded.close()
    if failed:
        log.warning("%d shapes gave no texture pairs", failed)
    if not normals:
        raise ValueError("no texture pairs could be rendered")
    return TexturePairs(np.concatenate(normals), np.concatenate(textured), np.array(labels), tuple(categories))
