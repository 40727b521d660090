"""Colour renders with the mesh's own look: aligned with the grey views, coloured by the file, composited, leak-free."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from photo2cad.shapes.meshes import MeshLoadError, load_mesh, normalise
from photo2cad.shapes.render import Renderer, camera_poses
from photo2cad.shapes.settings import RenderSettings
from photo2cad.shapes.shaded import Light, ShadedRenderer, load_textured

SIZE = 96
SETTINGS = RenderSettings(num_views=4, embed_size=SIZE)
RED = (220, 30, 30, 255)
GREEN_TEXTURE = (40, 200, 60)


def _stool() -> trimesh.Trimesh:
    """An asymmetric piece off the origin and not unit-sized, so that centring and scale both show in a render."""
    seat = trimesh.creation.box(extents=(0.8, 0.1, 0.5))
    seat.apply_translation([3.0, 1.0, -2.0])
    legs = []
    for x, z in ((2.7, -1.85), (3.3, -1.85), (2.7, -2.15)):
        leg = trimesh.creation.cylinder(radius=0.04, height=1.0, sections=12)
        leg.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))
        leg.apply_translation([x, 0.5, z])
        legs.append(leg)
    back = trimesh.creation.box(extents=(0.8, 0.7, 0.06))
    back.apply_translation([3.0, 1.4, -2.25])
    merged = trimesh.util.concatenate([seat, *legs, back])
    assert isinstance(merged, trimesh.Trimesh)
    return merged


def _write_obj(
    folder: Path, kd: tuple[int, int, int, int], texture: bool, texture_size: tuple[int, int] = (8, 8)
) -> Path:
    mesh = _stool()
    image = Image.new("RGB", texture_size, GREEN_TEXTURE) if texture else None
    uv = (mesh.vertices[:, [0, 1]] % 1.0) if texture else None
    material = trimesh.visual.material.SimpleMaterial(image=image, diffuse=kd)
    mesh.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    text, files = trimesh.exchange.obj.export_obj(mesh, include_texture=True, return_texture=True, mtl_name="stool.mtl")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stool.obj").write_text(text)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder / "stool.obj"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("textured")
    written = {
        "obj": _write_obj(folder / "obj", (255, 255, 255, 255), texture=True),
        "obj_without_texture_file": _write_obj(folder / "missing", (30, 60, 220, 255), texture=True),
        # 5 RGB pixels are 15 bytes a row: not a multiple of OpenGL's default 4-byte row alignment.
        "obj_with_odd_width_texture": _write_obj(
            folder / "odd", (255, 255, 255, 255), texture=True, texture_size=(5, 38)
        ),
    }
    for image in (folder / "missing").glob("*.png"):
        image.unlink()
    coloured = _stool()
    coloured.visual.face_colors = RED
    written["ply"] = folder / "stool.ply"
    coloured.export(written["ply"])
    pbr = _stool()
    pbr.visual = trimesh.visual.TextureVisuals(
        material=trimesh.visual.material.PBRMaterial(baseColorFactor=RED, metallicFactor=0.0, roughnessFactor=0.8)
    )
    written["glb"] = folder / "stool.glb"
    trimesh.Scene(pbr).export(written["glb"])
    written["stl"] = folder / "stool.stl"
    _stool().export(written["stl"])
    return written


@pytest.fixture(scope="module")
def shaded() -> Iterator[ShadedRenderer]:
    with ShadedRenderer(SIZE, SETTINGS.yfov_deg) as opened:
        yield opened


@pytest.fixture(scope="module")
def grey() -> Iterator[Renderer]:
    with Renderer(SETTINGS) as opened:
        yield opened


def _grown(mask: np.ndarray) -> np.ndarray:
    """The mask and its 4-neighbours: antialiased edge pixels blend object and background just outside it."""
    return mask | np.roll(mask, 1, 0) | np.roll(mask, -1, 0) | np.roll(mask, 1, 1) | np.roll(mask, -1, 1)


def _object_mean(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return rgb[mask].astype(np.float64).mean(axis=0)


def _assert_every_render_is_the_first(
    shaded: ShadedRenderer, scene: trimesh.Scene, pose: np.ndarray, renders: int
) -> None:
    first, _ = shaded.render(scene, pose)
    for _ in range(renders):
        again, _ = shaded.render(scene, pose)
        np.testing.assert_array_equal(again, first)


@pytest.mark.parametrize("fmt", ["obj", "glb", "ply", "stl"])
def test_a_textured_render_has_the_silhouette_of_the_grey_render(
    files: dict[str, Path], shaded: ShadedRenderer, grey: Renderer, fmt: str
) -> None:
    views = grey.render(normalise(load_mesh(files[fmt])), SIZE, passes=("mask",))
    scene = load_textured(files[fmt])
    assert views.masks is not None

    for view, pose in enumerate(camera_poses(SETTINGS)):
        _, mask = shaded.render(scene, pose)
        iou = (mask & views.masks[view]).sum() / (mask | views.masks[view]).sum()
        assert iou > 0.97, f"view {view}: IoU {iou:.3f}"


def test_load_textured_centres_and_scales_like_normalise(files: dict[str, Path]) -> None:
    expected = normalise(load_mesh(files["obj"])).bounds

    np.testing.assert_allclose(load_textured(files["obj"]).bounds, expected, atol=1e-9)


def test_face_colours_of_a_ply_colour_the_render(files: dict[str, Path], shaded: ShadedRenderer) -> None:
    rgb, mask = shaded.render(load_textured(files["ply"]), camera_poses(SETTINGS)[0])

    red, green, blue = _object_mean(rgb, mask)
    assert red > 2 * green and red > 2 * blue


def test_a_glb_base_colour_colours_the_render(files: dict[str, Path], shaded: ShadedRenderer) -> None:
    rgb, mask = shaded.render(load_textured(files["glb"]), camera_poses(SETTINGS)[0])

    red, green, blue = _object_mean(rgb, mask)
    assert red > 2 * green and red > 2 * blue


@pytest.mark.parametrize("model", ["obj", "obj_with_odd_width_texture"])
def test_an_obj_texture_image_colours_the_render(files: dict[str, Path], shaded: ShadedRenderer, model: str) -> None:
    rgb, mask = shaded.render(load_textured(files[model]), camera_poses(SETTINGS)[0])

    red, green, blue = _object_mean(rgb, mask)
    assert green > 1.5 * red and green > 1.5 * blue


def test_a_texture_of_any_width_renders_the_same_every_time(files: dict[str, Path], shaded: ShadedRenderer) -> None:
    _assert_every_render_is_the_first(
        shaded, load_textured(files["obj_with_odd_width_texture"]), camera_poses(SETTINGS)[2], renders=20
    )


def test_a_missing_texture_file_falls_back_to_the_flat_material_colour(
    files: dict[str, Path], shaded: ShadedRenderer
) -> None:
    rgb, mask = shaded.render(load_textured(files["obj_without_texture_file"]), camera_poses(SETTINGS)[0])

    red, green, blue = _object_mean(rgb, mask)
    assert blue > 1.5 * red and blue > green


def test_a_file_that_is_not_a_mesh_raises_mesh_load_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.obj"
    broken.write_bytes(b"v 1 2\nf 9 9 9\n\x00\xff")

    with pytest.raises(MeshLoadError):
        load_textured(broken)


def test_the_render_is_composited_over_the_background_outside_the_mask(
    files: dict[str, Path], shaded: ShadedRenderer
) -> None:
    background = np.zeros((SIZE, SIZE, 3), np.uint8)
    background[..., 1] = 180
    background[:, : SIZE // 2, 2] = 90

    rgb, mask = shaded.render(load_textured(files["ply"]), camera_poses(SETTINGS)[1], background=background)

    grown = _grown(mask)
    np.testing.assert_array_equal(rgb[~grown], background[~grown])
    assert np.abs(rgb[mask].astype(int) - background[mask]).mean() > 50


def test_without_a_background_the_render_is_on_white(files: dict[str, Path], shaded: ShadedRenderer) -> None:
    rgb, mask = shaded.render(load_textured(files["ply"]), camera_poses(SETTINGS)[2])

    assert mask.any() and not mask.all()
    assert (rgb[~_grown(mask)] == 255).all()


def test_the_default_lights_follow_the_camera(files: dict[str, Path], shaded: ShadedRenderer) -> None:
    scene = load_textured(files["stl"])
    brightness = [_object_mean(*shaded.render(scene, pose)).mean() for pose in camera_poses(SETTINGS)]

    assert min(brightness) > 0.8 * max(brightness)


def test_given_lights_replace_the_default_ones(files: dict[str, Path], shaded: ShadedRenderer) -> None:
    scene = load_textured(files["stl"])
    pose = camera_poses(SETTINGS)[0]
    dim = [Light(kind="ambient", intensity=0.2)]
    warm = [Light(direction=(0.0, -0.5, -1.0), colour=(1.0, 0.5, 0.2), intensity=4.0), *dim]
    point = [Light(kind="point", position=(0.0, 0.0, 0.0), intensity=40.0)]

    default_mean = _object_mean(*shaded.render(scene, pose))
    dim_mean = _object_mean(*shaded.render(scene, pose, lights=dim))
    red, green, blue = _object_mean(*shaded.render(scene, pose, lights=warm))
    point_mean = _object_mean(*shaded.render(scene, pose, lights=point))

    assert dim_mean.mean() < 0.7 * default_mean.mean()
    assert red > green > blue
    assert point_mean.mean() > dim_mean.mean()


def test_repeated_renders_give_the_same_image_and_hold_no_gl_objects(
    files: dict[str, Path], shaded: ShadedRenderer
) -> None:
    scene = load_textured(files["obj"])
    pose = camera_poses(SETTINGS)[3]
    first, _ = shaded.render(scene, pose)
    for _ in range(20):
        again, _ = shaded.render(scene, pose)

    np.testing.assert_array_equal(again, first)
    gl_state = shaded._context.pyrender_renderer
    assert not gl_state._meshes and not gl_state._mesh_textures


def test_a_renderer_refuses_calls_from_another_thread(files: dict[str, Path], shaded: ShadedRenderer) -> None:
    errors: list[BaseException] = []

    def render_elsewhere() -> None:
        try:
            shaded.render(load_textured(files["stl"]), camera_poses(SETTINGS)[0])
        except RuntimeError as error:
            errors.append(error)

    thread = threading.Thread(target=render_elsewhere)
    thread.start()
    thread.join()

    assert len(errors) == 1 and "thread" in str(errors[0])


def test_a_closed_renderer_refuses_to_render(files: dict[str, Path]) -> None:
    with ShadedRenderer(32) as renderer:
        renderer.render(load_textured(files["stl"]), camera_poses(SETTINGS)[0])

    with pytest.raises(RuntimeError, match="closed"):
        renderer.render(load_textured(files["stl"]), camera_poses(SETTINGS)[0])


def test_a_background_of_the_wrong_size_is_refused(files: dict[str, Path], shaded: ShadedRenderer) -> None:
    with pytest.raises(ValueError, match="background"):
        shaded.render(load_textured(files["stl"]), np.eye(4), background=np.zeros((8, 8, 3), np.uint8))


def test_a_white_matte_surface_is_not_washed_out_to_flat_white(shaded: ShadedRenderer) -> None:
    box = trimesh.creation.box(extents=(1.2, 1.0, 0.8))
    white = trimesh.visual.material.PBRMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0], metallicFactor=0.0)
    box.visual = trimesh.visual.TextureVisuals(material=white)
    rgb, mask = shaded.render(box, camera_poses(SETTINGS)[1], background=np.zeros((SIZE, SIZE, 3), np.uint8))
    brightness = rgb[mask].mean(axis=1)
    assert (brightness >= 250).mean() < 0.01  # hardly a pixel at the top of the scale
    assert np.percentile(brightness, 95) - np.percentile(brightness, 5) > 25  # the faces keep their shading


def test_coplanar_parts_of_a_scene_render_the_same_every_time(shaded: ShadedRenderer) -> None:
    # Two parts whose faces lie in one plane (common in CAD: a panel inlaid in a frame): which colour wins there
    # depends on the order the parts are drawn in, and that order must not change from render to render or run to run.
    scene = trimesh.Scene()
    for name, colour in (
        ("frame", [0.9, 0.1, 0.1, 1.0]),
        ("panel", [0.1, 0.1, 0.9, 1.0]),
        ("inlay", [0.1, 0.8, 0.1, 1.0]),
    ):
        part = trimesh.creation.box(extents=(1.0, 1.0, 0.2))
        part.visual = trimesh.visual.TextureVisuals(
            material=trimesh.visual.material.PBRMaterial(baseColorFactor=colour, metallicFactor=0.0)
        )
        scene.add_geometry(part, geom_name=name)
    _assert_every_render_is_the_first(shaded, scene, camera_poses(SETTINGS)[1], renders=30)
