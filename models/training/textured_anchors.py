"""Textured renders of every pool shape as extra training anchors: photo-like images of shapes nobody photographed.

Real training photos show a few shapes only (40 of the 186 IKEA models). Trained on them alone, the network learns
that those shapes are the answers and ranks the others lower: shapes without photos, a user's catalogue, suffer. Each
shape rendered with its own materials (the file's textures and colours, `shapes.shaded`), under cameras other than
the pool's, cropped to the object like a photo crop and set on a background cut from a real training photo, is an
anchor whose positive is that shape: every shape of the pool is taught as an answer. What the shape wears is its
look (looks.py): its own materials, random finishes, or TSM textures.
"""

from __future__ import annotations

import functools
import zlib
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

from photo2cad.models import TextureSynthesisModule
from photo2cad.models.datasets.photos import PhotoSample
from photo2cad.models.preprocess import letterbox
from photo2cad.models.training.looks import LOOKS, Look, anchor_lights, random_look, tsm_look
from photo2cad.shapes.cache import cached_renders
from photo2cad.shapes.meshes import load_mesh, normalise
from photo2cad.shapes.pool import ShapeRecord
from photo2cad.shapes.render import Renderer, camera_poses
from photo2cad.shapes.settings import RenderSettings
from photo2cad.shapes.shaded import ShadedRenderer, load_textured


@dataclass(frozen=True)
class TexturedViews:
    """Row i: the textured renders of shape_ids[i], over black, and their silhouettes."""

    shape_ids: tuple[str, ...]
    colour: np.ndarray  # (N, R, S, S, 3) uint8: R renders per shape (looks x cameras)
    masks: np.ndarray  # (N, R, S, S) bool


def anchor_cameras(pool: RenderSettings, num_views: int = 8) -> RenderSettings:
    """Cameras between and above the pool's: anchors must not be copies of the views they are matched against."""
    return pool.model_copy(update={"num_views": num_views, "elevation_deg": pool.elevation_deg + 12.0})


@dataclass(frozen=True)
class TSMTextures:
    """A trained TSM for the `tsm` look: the network, its file's checksum (part of the cache key) and the category
    names in the order it was trained with."""

    model: TextureSynthesisModule
    identity: str
    categories: tuple[str, ...]


def render_textured_views(
    shapes: Sequence[ShapeRecord],
    settings: RenderSettings,
    cache_dir: Path,
    looks: Sequence[Look] = ("own",),
    seed: int = 0,
    tsm: TSMTextures | None = None,
    progress: bool = True,
) -> TexturedViews:
    """Every shape in each of `looks` from each camera of `settings`, at settings.embed_size, under random lights,
    cached per shape; broken shapes are logged and left out. Renders of one shape: looks x cameras, in that order."""
    unknown = set(looks) - set(LOOKS)
    if unknown or not looks:
        raise ValueError(f"looks must be some of {', '.join(LOOKS)}, got {list(looks)}")
    if "tsm" in looks and tsm is None:
        raise ValueError("the tsm look needs a trained TSM (photo2cad train tsm)")
    size = settings.embed_size
    poses = camera_poses(settings)
    black = np.zeros((size, size, 3), np.uint8)
    with ExitStack() as resources:
        shaded = functools.cache(lambda: resources.enter_context(ShadedRenderer(size, settings.yfov_deg)))
        normals_renderer = functools.cache(lambda: resources.enter_context(Renderer(_tsm_cameras(settings, tsm))))

        def render(shape: ShapeRecord) -> dict[str, np.ndarray]:
            rng = np.random.default_rng([seed, zlib.crc32(shape.shape_id.encode())])
            scene = load_textured(shape.path)
            colours, masks = [], []
            for look in looks:
                if look == "tsm":
                    assert tsm is not None
                    colour, mask = _tsm_renders(shape, normals_renderer(), tsm, size, rng)
                    colours += list(colour)
                    masks += list(mask)
                    continue
                dressed = random_look(scene, rng) if look == "random" else scene
                for pose in poses:
                    colour, mask = shaded().render(dressed, pose, lights=anchor_lights(rng), background=black)
                    colours.append(colour)
                    masks.append(mask)
            return {"colour": np.stack(colours), "masks": np.stack(masks)}

        variant = f"looks={','.join(looks)}|seed={seed}|tsm={tsm.identity if tsm else '-'}"
        views = cached_renders(
            shapes, cache_dir / f"textured-{settings.identity()}", render, variant, "rendering anchors", progress
        )
    if not views.shape_ids:
        raise ValueError("no shape could be rendered with its materials")
    return TexturedViews(views.shape_ids, views.arrays["colour"], views.arrays["masks"])


def _tsm_cameras(settings: RenderSettings, tsm: TSMTextures | None) -> RenderSettings:
    """The anchor cameras at the TSM's side, with the field of view the shaded renders have (no object framing)."""
    synth = tsm.model.config.image_size if tsm is not None else settings.synth_size
    return settings.model_copy(update={"framing": "fixed", "synth_size": synth, "embed_size": synth})


def _tsm_renders(
    shape: ShapeRecord, renderer: Renderer, tsm: TSMTextures, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(V, S, S, 3) TSM-textured renders over black and (V, S, S) silhouettes, from the anchor cameras."""
    synth = tsm.model.config.image_size
    views = renderer.render(normalise(load_mesh(shape.path)), synth, passes=("normals", "mask"))
    assert views.normals is not None and views.masks is not None
    category = tsm.categories.index(shape.category) if shape.category in tsm.categories else -1
    painted = _resized(tsm_look(tsm.model, views.normals, category, rng), size, Image.Resampling.BILINEAR)
    masks = _resized(views.masks, size, Image.Resampling.NEAREST)
    return painted * masks[..., None], masks  # over black, like the shaded looks


def _resized(images: np.ndarray, size: int, resample: Image.Resampling) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(image).resize((size, size), resample)) for image in images])


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
            is_photo=False,
        )
