"""A tiny retrieval dataset in the plain folder layout, made by the tests: the meshpool shapes plus "photos"
(renders from random viewpoints, tinted, on coloured backgrounds) split into train, val and test."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from indexer.meshes import load_mesh, normalise
from indexer.render import Renderer, camera_poses
from indexer.settings import RenderSettings
from tests.meshpool import write_pool

SPLITS = ("train", "train", "train", "val", "test")


def write_photo_dataset(root: Path, size: int = 64, seed: int = 0) -> Path:
    paths = write_pool(root / "pool", corrupt=False)
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
                tint = rng.uniform(0.6, 1.0, size=3)
                background = rng.integers(0, 255, size=3)
                grey = views.grey[view].astype(np.float64) * tint
                photo = np.where(views.masks[view][..., None], grey, background).astype(np.uint8)
                name = f"photos/{shape_id.replace('/', '_')}_{k}.jpg"
                Image.fromarray(photo).save(root / name, quality=92)
                rows.append({"image": name, "shape_id": shape_id, "split": split, "category": shape_id.split("/")[0]})
    with (root / "queries.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "shape_id", "split", "category"])
        writer.writeheader()
        writer.writerows(rows)
    return root
