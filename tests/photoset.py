"""A tiny retrieval dataset in the plain folder layout, made by the tests: the meshpool shapes (and stretched
variants of them, the fine-grained pairs) plus "photos": renders from random viewpoints, painted with a random colour
and stripes, on noisy backgrounds, split into train, val and test. The paint and the backgrounds are the domain gap
that training has to bridge: the pool views are plain grey on white."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from photo2cad.shapes.meshes import load_mesh, normalise
from photo2cad.shapes.render import Renderer, camera_poses
from photo2cad.shapes.settings import RenderSettings
from tests.meshpool import write_pool

SPLITS = ("train", "train", "train", "train", "val", "test", "test", "test")


def _paint(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grey shading times a saturated colour, with stripes of a second colour at a random angle and period."""
    size = grey.shape[0]
    y, x = np.mgrid[0:size, 0:size]
    angle, period = rng.uniform(0, np.pi), rng.uniform(4, 12)
    stripes = (np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period) > 0)[..., None]
    first, second = rng.uniform(0.2, 1.0, size=3), rng.uniform(0.2, 1.0, size=3)
    return grey.astype(np.float64) * np.where(stripes, first, second)


def _backdrop(size: int, rng: np.random.Generator) -> np.ndarray:
    base = rng.integers(0, 255, size=3)
    return np.clip(base + rng.normal(0, 40, size=(size, size, 3)), 0, 255)


def write_photo_dataset(root: Path, size: int = 64, seed: int = 0, count: int = 8) -> Path:
    paths = write_pool(root / "pool", count=count, corrupt=False)
    rng = np.random.default_rng(seed)
    (root / "photos").mkdir(parents=True, exist_ok=True)
    rows = []
    # Off-grid cameras: 20 views, so photos are not the exact views the index holds.
    settings = RenderSettings(num_views=20, embed_size=size, elevation_deg=20.0)
    with Renderer(settings) as renderer:
        for shape_id, path in paths.items():
            views = renderer.render(normalise(load_mesh(path)), size, passes=("grey", "mask"))
            assert views.grey is not None and views.masks is not None
            picks = rng.choice(len(camera_poses(settings)), size=len(SPLITS), replace=False)
            for k, (view, split) in enumerate(zip(picks, SPLITS, strict=True)):
                painted = _paint(views.grey[view], rng)
                photo = np.where(views.masks[view][..., None], painted, _backdrop(size, rng)).astype(np.uint8)
                name = f"photos/{shape_id.replace('/', '_')}_{k}.jpg"
                Image.fromarray(photo).save(root / name, quality=92)
                rows.append({"image": name, "shape_id": shape_id, "split": split, "category": shape_id.split("/")[0]})
    with (root / "queries.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "shape_id", "split", "category"])
        writer.writeheader()
        writer.writerows(rows)
    return root
