"""Textured renders of every pool shape as extra training anchors: photo-like images of shapes nobody photographed.

Real training photos show a few shapes only (40 of the 186 IKEA models). Trained on them alone, the network learns
that those shapes are the answers and ranks the others lower: shapes without photos, a user's catalogue, suffer. Each
shape rendered with its own materials (the file's textures and colours, `shapes.shaded`), under cameras other than
the pool's, cropped to the object like a photo crop and set on a background cut from a real training photo, is an
anchor whose positive is that shape: every shape of the pool is taught as an answer. For files without materials
(stl, off) the render is uncoloured: it still teaches the silhouette and shading.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2
from torchvision.tv_tensors import Mask

from photo2cad.models.datasets.photos import PhotoSample
from photo2cad.models.preprocess import letterbox
from photo2cad.shapes.cache import cached_renders
from photo2cad.shapes.pool import ShapeRecord
from photo2cad.shapes.render import camera_poses
from photo2cad.shapes.settings import RenderSettings
from photo2cad.shapes.shaded import ShadedRenderer, load_textured


@dataclass(frozen=True)
class TexturedViews:
    """Row i: the textured renders of shape_ids[i], over black, and their silhouettes."""

    shape_ids: tuple[str, ...]
    colour: np.ndarray  # (N, V, S, S, 3) uint8
    masks: np.ndarray  # (N, V, S, S) bool


def anchor_cameras(pool: RenderSettings, num_views: int = 8) -> RenderSettings:
    """Cameras between and above the pool's: anchors must not be copies of the views they are matched against."""
    return pool.model_copy(update={"num_views": num_views, "elevation_deg": pool.elevation_deg + 12.0})


def render_textured_views(
    shapes: Sequence[ShapeRecord], settings: RenderSettings, cache_dir: Path, progress: bool = True
) -> TexturedViews:
    """Own-material renders of every shape at settings.embed_size, cached per shape; broken shapes are logged."""
    size = settings.embed_size
    poses = camera_poses(settings)
    black = np.zeros((size, size, 3), np.uint8)
    with ExitStack() as resources:
        renderer = functools.cache(lambda: resources.enter_context(ShadedRenderer(size, settings.yfov_deg)))

        def render(shape: ShapeRecord) -> dict[str, np.ndarray]:
            scene = load_textured(shape.path)
            rendered = [renderer().render(scene, pose, background=black) for pose in poses]
            return {"colour": np.stack([c for c, _ in rendered]), "masks": np.stack([m for _, m in rendered])}

        views = cached_renders(
            shapes, cache_dir / f"textured-{settings.identity()}", render, "", "rendering textured anchors", progress
        )
    if not views.shape_ids:
        raise ValueError("no shape could be rendered with its materials")
    return TexturedViews(views.shape_ids, views.arrays["colour"], views.arrays["masks"])


def object_crop(mask: np.ndarray, margin: float) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the silhouette grown by `margin` of its size, clipped to the image."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return 0, 0, mask.shape[1], mask.shape[0]
    grow_y, grow_x = margin * (rows[-1] - rows[0] + 1), margin * (cols[-1] - cols[0] + 1)
    return (
        max(0, int(cols[0] - grow_x)),
        max(0, int(rows[0] - grow_y)),
        min(mask.shape[1], int(cols[-1] + 1 + grow_x)),
        min(mask.shape[0], int(rows[-1] + 1 + grow_y)),
    )


class TexturedAnchors(Dataset[PhotoSample]):
    """One sample per shape and epoch: a random one of its textured views on a background cut from a photo."""

    def __init__(
        self,
        views: TexturedViews,
        shape_rows: dict[str, int],
        categories_of_shapes: Sequence[int],
        backgrounds: Sequence[Path],
        size: int,
        augment: v2.Transform | None,
    ) -> None:
        keep = [i for i, sid in enumerate(views.shape_ids) if sid in shape_rows]
        self.views = views
        self.rows = keep
        self.shape_rows = shape_rows
        self.categories_of_shapes = categories_of_shapes
        self.backgrounds = list(backgrounds)
        self.size = size
        self.augment = augment

    def __len__(self) -> int:
        return len(self.rows)

    def _background(self, size: tuple[int, int]) -> np.ndarray:
        if not self.backgrounds or torch.rand(()) < 0.2:
            colour = torch.randint(0, 256, (3,)).numpy().astype(np.uint8)
            return np.broadcast_to(colour, (size[1], size[0], 3)).copy()
        path = self.backgrounds[int(torch.randint(len(self.backgrounds), ()))]
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR)).copy()

    def __getitem__(self, index: int) -> PhotoSample:
        row = self.rows[index]
        view = int(torch.randint(self.views.colour.shape[1], ()))
        colour, mask = self.views.colour[row, view], self.views.masks[row, view]
        left, top, right, bottom = object_crop(mask, margin=float(torch.empty(()).uniform_(0.02, 0.15)))
        colour, mask = colour[top:bottom, left:right], mask[top:bottom, left:right]
        composite = np.where(mask[..., None], colour, self._background((colour.shape[1], colour.shape[0])))
        photo = letterbox(Image.fromarray(composite), self.size)
        silhouette = letterbox(Image.fromarray(mask.astype(np.uint8) * 255), self.size, fill=0)
        photo_tensor = torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1).float().div_(255.0)
        mask_tensor = torch.from_numpy((np.asarray(silhouette) > 127).astype(np.float32)).unsqueeze(0)
        if self.augment is not None:
            photo_tensor, mask_tensor = self.augment(photo_tensor, Mask(mask_tensor))
        shape_id = self.views.shape_ids[row]
        return PhotoSample(
            photo=photo_tensor.clamp(0, 1),
            mask=torch.as_tensor(mask_tensor),
            has_mask=True,
            shape_row=self.shape_rows[shape_id],
            category=int(self.categories_of_shapes[self.shape_rows[shape_id]]),
        )
