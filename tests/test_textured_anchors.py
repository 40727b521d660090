"""Textured anchors: every pool shape, rendered with its own materials, joins training as a photo-like sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from photo2cad.models.training.textured_anchors import (
    TexturedAnchors,
    TexturedViews,
    anchor_cameras,
    object_crop,
    render_textured_views,
)
from photo2cad.shapes.pool import scan_pool
from photo2cad.shapes.settings import RenderSettings
from tests.meshpool import write_pool

SIZE = 48


def test_object_crop_grows_the_silhouette_box_and_stays_inside_the_image() -> None:
    mask = np.zeros((100, 100), bool)
    mask[20:40, 50:90] = True

    assert object_crop(mask, margin=0.0) == (50, 20, 90, 40)
    assert object_crop(mask, margin=0.5) == (30, 10, 100, 50)
    assert object_crop(np.zeros((8, 8), bool), margin=0.1) == (0, 0, 8, 8)


def test_anchor_cameras_differ_from_the_pool_views() -> None:
    pool = RenderSettings(embed_size=SIZE)
    cameras = anchor_cameras(pool)
    assert cameras.elevation_deg != pool.elevation_deg and cameras.embed_size == pool.embed_size


@pytest.fixture(scope="module")
def textured(tmp_path_factory: pytest.TempPathFactory) -> TexturedViews:
    root = tmp_path_factory.mktemp("pool")
    write_pool(root / "pool", corrupt=True)
    shapes = scan_pool(root / "pool").shapes
    assert "chair/broken" in {shape.shape_id for shape in shapes}
    return render_textured_views(shapes, anchor_cameras(RenderSettings(embed_size=SIZE)), root / "cache", False)


def test_every_readable_shape_gets_textured_views_and_broken_ones_are_left_out(textured: TexturedViews) -> None:
    assert len(textured.shape_ids) >= 4 and "chair/broken" not in textured.shape_ids
    assert textured.colour.shape == (len(textured.shape_ids), 8, SIZE, SIZE, 3)
    assert textured.masks.any(axis=(2, 3)).all(), "every view shows its shape"


def test_an_anchor_is_its_shape_on_a_background_with_its_silhouette(textured: TexturedViews) -> None:
    rows = {sid: i for i, sid in enumerate(textured.shape_ids)}
    categories = list(range(len(rows)))
    anchors = TexturedAnchors(textured, rows, categories, backgrounds=[], size=SIZE, augment=None)

    torch.manual_seed(0)
    sample = anchors[1]

    assert len(anchors) == len(rows)
    assert sample.photo.shape == (3, SIZE, SIZE) and sample.has_mask
    assert sample.shape_row == rows[textured.shape_ids[1]] and sample.category == categories[sample.shape_row]
    inside, outside = sample.mask[0] > 0.5, sample.mask[0] < 0.5
    assert inside.float().mean() > 0.2, "cropped to the object like a photo crop"
    assert outside.any() and not torch.equal(sample.photo[:, inside].mean(1), sample.photo[:, outside].mean(1))
