"""Textured anchors: every pool shape, rendered in its own materials, random finishes or TSM textures, joins training
as a photo-like sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from photo2cad.models import TextureSynthesisModule, TSMConfig
from photo2cad.models.training.textured_anchors import (
    TexturedAnchors,
    TexturedViews,
    TSMTextures,
    anchor_cameras,
    object_crop,
    render_textured_views,
)
from photo2cad.shapes.pool import ShapeRecord, scan_pool
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
    return render_textured_views(
        shapes, anchor_cameras(RenderSettings(embed_size=SIZE)), root / "cache", progress=False
    )


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


@pytest.fixture(scope="module")
def untextured_chair(tmp_path_factory: pytest.TempPathFactory) -> list[ShapeRecord]:
    """An stl (no materials) of a chair-like piece: a seat box and four loose legs, five connected pieces."""
    seat = trimesh.creation.box(extents=(1.0, 0.15, 1.0))
    legs = [trimesh.creation.box(extents=(0.1, 0.8, 0.1)) for _ in range(4)]
    for leg, (x, z) in zip(legs, [(-0.4, -0.4), (-0.4, 0.4), (0.4, -0.4), (0.4, 0.4)], strict=True):
        leg.apply_translation((x, -0.45, z))
    path = tmp_path_factory.mktemp("untextured") / "chair.stl"
    trimesh.util.concatenate([seat, *legs]).export(path)
    return [ShapeRecord("chair/plain", path, "chair")]


def _object_colours(views: TexturedViews) -> np.ndarray:
    return views.colour[views.masks].reshape(-1, 3).astype(float)


def test_the_random_look_dresses_an_untextured_model_in_colours(
    untextured_chair: list[ShapeRecord], tmp_path: Path
) -> None:
    cameras = anchor_cameras(RenderSettings(embed_size=SIZE), num_views=2)
    own = render_textured_views(untextured_chair, cameras, tmp_path, looks=("own",), progress=False)
    dressed = [
        render_textured_views(untextured_chair, cameras, tmp_path, looks=("random",), seed=seed, progress=False)
        for seed in range(4)
    ]
    # Its own look is grey (no material) under tinted lights; dressed, it takes colours, a new one per seed.
    own_chroma = np.abs(np.diff(_object_colours(own), axis=1)).mean()
    assert max(np.abs(np.diff(_object_colours(d), axis=1)).mean() for d in dressed) > 2 * own_chroma + 5
    means = [_object_colours(d).mean(axis=0) for d in dressed]
    assert max(np.abs(a - b).max() for a in means for b in means) > 10.0
    np.testing.assert_array_equal(dressed[0].masks, own.masks)  # the same silhouettes, only dressed differently


def test_the_tsm_look_paints_an_untextured_models_renders_inside_its_silhouette(
    untextured_chair: list[ShapeRecord], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    tsm = TextureSynthesisModule(TSMConfig(num_categories=2, image_size=32, base_channels=8))
    textures = TSMTextures(tsm, identity="test-tsm", categories=("bed", "chair"))
    cameras = anchor_cameras(RenderSettings(embed_size=SIZE), num_views=3)
    painted = render_textured_views(untextured_chair, cameras, tmp_path, looks=("tsm",), tsm=textures, progress=False)
    assert painted.colour.shape == (1, 3, SIZE, SIZE, 3)
    assert painted.masks[0].mean() > 0.05
    assert (painted.colour[~painted.masks] == 0).all()  # nothing painted outside the silhouette (over black)
    inside = _object_colours(painted)
    assert inside.std() > 5.0 and np.abs(np.diff(inside, axis=1)).mean() > 1.0  # textured, not one grey
    with pytest.raises(ValueError, match="needs a trained TSM"):
        render_textured_views(untextured_chair, cameras, tmp_path, looks=("tsm",), progress=False)
