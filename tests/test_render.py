"""Headless multi-view renders: cameras where the settings put them, passes that measure what they claim."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import trimesh

from photo2cad.shapes.gl import select_gl_platform
from photo2cad.shapes.render import NORMALS_BACKGROUND, Renderer, ViewSet, camera_poses
from photo2cad.shapes.settings import RenderSettings

SETTINGS = RenderSettings()
FLAT_SETTINGS = RenderSettings(num_views=4, elevation_deg=0.0)


@pytest.fixture(scope="module")
def renderer() -> Iterator[Renderer]:
    with Renderer(SETTINGS) as opened:
        yield opened


@pytest.fixture(scope="module")
def level_renderer() -> Iterator[Renderer]:
    with Renderer(FLAT_SETTINGS) as opened:
        yield opened


@pytest.fixture(scope="module")
def sphere() -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=4, radius=1.0)


@pytest.fixture(scope="module")
def sphere_views(renderer: Renderer, sphere: trimesh.Trimesh) -> ViewSet:
    return renderer.render(sphere, 128)


def _focal_px(settings: RenderSettings, size: int) -> float:
    return (size / 2) / np.tan(np.radians(settings.yfov_deg) / 2)


def _box_with_arm(direction: tuple[float, float, float]) -> trimesh.Trimesh:
    body = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    arm = trimesh.creation.box(extents=[0.3 + 0.7 * abs(axis) for axis in direction])
    arm.apply_translation([0.85 * axis for axis in direction])
    merged = trimesh.util.concatenate([body, arm])
    assert isinstance(merged, trimesh.Trimesh)
    return merged


def _column_centroid(mask: np.ndarray) -> float:
    return float(np.nonzero(mask)[1].mean()) - (mask.shape[1] - 1) / 2


def test_platform_choice_is_headless_and_the_same_on_every_call() -> None:
    first = select_gl_platform()

    assert first in ("egl", "osmesa")
    assert select_gl_platform() == first == os.environ["PYOPENGL_PLATFORM"]


def test_pyrender_is_imported_with_a_headless_pyglet_on_egl() -> None:
    """pyrender imports pyglet's GL; windowed, that needs X's libraries, which GPU servers and the image lack."""
    script = (
        "from photo2cad.shapes.gl import import_pyrender; import_pyrender(); "
        "import pyglet; print(pyglet.options['headless'])"
    )
    environment = {key: value for key, value in os.environ.items() if key != "PYGLET_HEADLESS"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**environment, "PYOPENGL_PLATFORM": "egl"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_renderer_reports_the_gl_renderer_it_uses(renderer: Renderer) -> None:
    assert renderer.gl_renderer


def test_cameras_sit_at_the_distance_and_elevation_and_look_at_the_origin() -> None:
    poses = camera_poses(SETTINGS)

    positions = poses[:, :3, 3]
    viewing_directions = -poses[:, :3, 2]
    assert poses.shape == (12, 4, 4)
    np.testing.assert_allclose(np.linalg.norm(positions, axis=1), SETTINGS.distance)
    np.testing.assert_allclose(np.degrees(np.arcsin(positions[:, 1] / SETTINGS.distance)), SETTINGS.elevation_deg)
    np.testing.assert_allclose(viewing_directions, -positions / SETTINGS.distance, atol=1e-12)
    np.testing.assert_allclose(
        poses[:, :3, :3] @ poses[:, :3, :3].transpose(0, 2, 1), np.tile(np.eye(3), (12, 1, 1)), atol=1e-12
    )


def test_view_zero_is_on_plus_z_and_azimuth_90_on_plus_x() -> None:
    level = camera_poses(FLAT_SETTINGS)[:, :3, 3]

    np.testing.assert_allclose(level[0], (0.0, 0.0, FLAT_SETTINGS.distance), atol=1e-12)
    np.testing.assert_allclose(level[1], (FLAT_SETTINGS.distance, 0.0, 0.0), atol=1e-12)


def test_z_up_meshes_are_seen_from_minus_y_with_z_up_in_the_image() -> None:
    pose = camera_poses(RenderSettings(num_views=4, elevation_deg=0.0, up_axis="z"))[0]

    np.testing.assert_allclose(pose[:3, 3], (0.0, -FLAT_SETTINGS.distance, 0.0), atol=1e-12)
    np.testing.assert_allclose(pose[:3, 1], (0.0, 0.0, 1.0), atol=1e-12)


def test_passes_have_the_documented_shapes_and_types(sphere_views: ViewSet) -> None:
    assert sphere_views.grey is not None and sphere_views.normals is not None and sphere_views.masks is not None
    assert sphere_views.grey.shape == sphere_views.normals.shape == (12, 128, 128, 3)
    assert sphere_views.grey.dtype == sphere_views.normals.dtype == np.uint8
    assert sphere_views.masks.shape == (12, 128, 128) and sphere_views.masks.dtype == bool


def test_only_the_passes_asked_for_are_returned(renderer: Renderer, sphere: trimesh.Trimesh) -> None:
    views = renderer.render(sphere, 32, passes=("mask",))

    assert views.grey is None and views.normals is None
    assert views.masks is not None and views.masks.shape == (12, 32, 32)


def test_an_unknown_pass_is_refused(renderer: Renderer, sphere: trimesh.Trimesh) -> None:
    with pytest.raises(ValueError, match="depth"):
        renderer.render(sphere, 32, passes=("grey", "depth"))


def test_sphere_silhouette_matches_the_analytic_projected_area(sphere_views: ViewSet) -> None:
    assert sphere_views.masks is not None
    # A unit sphere at distance d is seen under the half-angle asin(1/d): a disc of radius f*tan(asin(1/d)).
    radius_px = _focal_px(SETTINGS, 128) * np.tan(np.arcsin(1.0 / SETTINGS.distance))

    areas = sphere_views.masks.sum(axis=(1, 2))

    np.testing.assert_allclose(areas, np.pi * radius_px**2, rtol=0.02)


def test_cube_silhouette_seen_level_is_its_front_face(level_renderer: Renderer) -> None:
    # Seen head-on from the axis, the side faces project inside the front face at depth d - 1.
    side_px = 2 * _focal_px(FLAT_SETTINGS, 128) / (FLAT_SETTINGS.distance - 1.0)

    views = level_renderer.render(trimesh.creation.box(extents=(2.0, 2.0, 2.0)), 128, passes=("mask",))

    assert views.masks is not None
    np.testing.assert_allclose(views.masks.sum(axis=(1, 2)), side_px**2, rtol=0.03)


def test_a_surface_facing_the_camera_is_encoded_128_128_255(sphere_views: ViewSet) -> None:
    assert sphere_views.normals is not None

    centre = sphere_views.normals[:, 62:66, 62:66].reshape(-1, 3).astype(float).mean(axis=0)

    np.testing.assert_allclose(centre, (128, 128, 255), atol=4)


def test_normals_point_right_and_up_in_the_image(level_renderer: Renderer, sphere: trimesh.Trimesh) -> None:
    views = level_renderer.render(sphere, 128, passes=("normals",))
    assert views.normals is not None
    row = views.normals[0, 64].astype(int)
    column = views.normals[0, :, 64].astype(int)

    right, left = row[np.nonzero(row[:, 2] != 128)[0][[-2, 1]]]
    top, bottom = column[np.nonzero(column[:, 2] != 128)[0][[1, -2]]]

    assert right[0] > 220 and left[0] < 35
    assert top[1] > 220 and bottom[1] < 35


def test_the_background_of_the_normal_map_is_the_zero_vector(sphere_views: ViewSet) -> None:
    assert sphere_views.normals is not None and sphere_views.masks is not None
    far_from_the_sphere = sphere_views.normals[:, :8, :8]

    assert (far_from_the_sphere == NORMALS_BACKGROUND).all()


def test_inverted_winding_renders_the_same(renderer: Renderer, sphere: trimesh.Trimesh) -> None:
    inverted = trimesh.Trimesh(sphere.vertices, sphere.faces[:, ::-1], process=False)

    as_made = renderer.render(sphere, 64)
    flipped = renderer.render(inverted, 64)

    assert as_made.masks is not None and flipped.masks is not None
    assert np.array_equal(as_made.masks, flipped.masks)
    assert as_made.normals is not None and flipped.normals is not None
    assert np.abs(as_made.normals.astype(int) - flipped.normals.astype(int)).max() <= 2
    assert as_made.grey is not None and flipped.grey is not None
    assert np.abs(as_made.grey.astype(int) - flipped.grey.astype(int)).max() <= 2


def test_grey_pass_has_a_white_background_and_a_darker_object(sphere_views: ViewSet) -> None:
    assert sphere_views.grey is not None and sphere_views.masks is not None
    grey = sphere_views.grey[..., 0]

    assert (grey[~sphere_views.masks] == 255).mean() > 0.99
    assert grey[sphere_views.masks].max() < 255
    assert grey[sphere_views.masks].mean() < 220
    assert (sphere_views.grey == sphere_views.grey[..., :1]).all()


def test_view_order_follows_the_azimuths_counter_clockwise_about_up(renderer: Renderer) -> None:
    # Azimuth 90 looks from +x, so an arm along +z points to the image's left; from 270 (-x) to its right.
    views = renderer.render(_box_with_arm((0.0, 0.0, 1.0)), 64, passes=("mask",))
    assert views.masks is not None

    assert _column_centroid(views.masks[3]) < -2
    assert _column_centroid(views.masks[9]) > 2
    assert abs(_column_centroid(views.masks[0])) < 0.5


def test_plus_x_is_to_the_right_in_view_zero(renderer: Renderer) -> None:
    views = renderer.render(_box_with_arm((1.0, 0.0, 0.0)), 64, passes=("mask",))
    assert views.masks is not None

    assert _column_centroid(views.masks[0]) > 2
    assert _column_centroid(views.masks[6]) < -2


def test_closing_one_renderer_leaves_the_others_working(renderer: Renderer, sphere: trimesh.Trimesh) -> None:
    with Renderer(FLAT_SETTINGS) as short_lived:
        short_lived.render(sphere, 32, passes=("mask",))

    views = renderer.render(sphere, 32, passes=("mask",))

    assert views.masks is not None and views.masks.any()


def _resident_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def test_rendering_many_meshes_with_one_renderer_does_not_grow_memory(level_renderer: Renderer) -> None:
    meshes = [trimesh.creation.icosphere(subdivisions=4, radius=0.5 + 0.01 * index) for index in range(5)]
    level_renderer.render(meshes[0], 64)
    before = _resident_mib()

    for index in range(50):
        level_renderer.render(meshes[index % len(meshes)], 64)

    assert _resident_mib() - before < 32


def _mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


@pytest.mark.parametrize("extents", [(0.3, 2.0, 0.3), (2.0, 0.4, 1.2)])
def test_object_framing_fills_each_view_like_an_object_crop(extents: tuple[float, float, float]) -> None:
    settings = RenderSettings(num_views=6, embed_size=96, framing="object", frame_margin=0.05)
    mesh = trimesh.creation.box(extents=extents)
    mesh.apply_scale(1.0 / (max(extents) / 2.0))  # normalised: largest half-extent 1
    with Renderer(settings) as framed:
        masks = framed.render(mesh, 96, passes=("mask",)).masks
    assert masks is not None
    for mask in masks:
        top, bottom, left, right = _mask_box(mask)
        longer = max(bottom - top + 1, right - left + 1)
        assert longer == pytest.approx(96 / 1.1, abs=3)  # the larger side spans the frame less the 5 % margins
        assert (top + bottom) / 2 == pytest.approx(47.5, abs=2) and (left + right) / 2 == pytest.approx(47.5, abs=2)


def test_object_framing_renders_grey_normals_and_masks_of_one_framing(sphere: trimesh.Trimesh) -> None:
    settings = RenderSettings(num_views=2, framing="object")
    with Renderer(settings) as framed:
        views = framed.render(sphere.copy().apply_scale(0.3), 64)
    assert views.grey is not None and views.normals is not None and views.masks is not None
    background = (views.normals == np.array(NORMALS_BACKGROUND, dtype=np.uint8)).all(axis=-1)
    assert np.mean(~background != views.masks) < 0.03  # they differ only along the antialiased outline
    assert views.masks.mean() > 0.6  # a sphere of radius 0.3 fills the framed view (a fixed camera shows it small)


def test_fixed_framing_keeps_the_identity_indexes_were_built_with() -> None:
    # The hash of the first release's settings: an index built before framing existed must still match.
    assert RenderSettings().identity() == "e56b027fdd239210"
    assert RenderSettings(framing="object").identity() != RenderSettings().identity()
