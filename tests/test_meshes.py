"""Pool files become one renderable mesh, or a MeshLoadError that says why."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import trimesh

from photo2cad.shapes.meshes import MESH_SUFFIXES, MeshLoadError, file_checksum, load_mesh, normalise, simplify


@pytest.mark.parametrize("suffix", MESH_SUFFIXES)
def test_every_supported_format_loads(tmp_path: Path, suffix: str) -> None:
    cylinder = trimesh.creation.cylinder(radius=0.5, height=2.0, sections=16)
    path = tmp_path / f"cylinder{suffix}"
    cylinder.export(path)

    mesh = load_mesh(path)

    assert len(mesh.faces) == len(cylinder.faces)
    np.testing.assert_allclose(mesh.bounds, cylinder.bounds, atol=1e-6)


def test_a_multi_part_scene_merges_with_its_transforms(tmp_path: Path) -> None:
    scene = trimesh.Scene()
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    cylinder = trimesh.creation.cylinder(radius=0.5, height=1.0, sections=12)
    scene.add_geometry(box, transform=trimesh.transformations.translation_matrix((3.0, 0.0, 0.0)))
    scene.add_geometry(cylinder)
    scene.export(tmp_path / "chair.glb")

    mesh = load_mesh(tmp_path / "chair.glb")

    assert len(mesh.faces) == len(box.faces) + len(cylinder.faces)
    np.testing.assert_allclose(mesh.bounds, [[-0.5, -0.5, -0.5], [3.5, 0.5, 0.5]], atol=1e-6)


def test_an_obj_whose_material_and_texture_are_missing_still_loads(tmp_path: Path) -> None:
    (tmp_path / "model.mtl").write_text("newmtl wood\nmap_Kd textures/wood.png\n")
    (tmp_path / "model.obj").write_text(
        "mtllib model.mtl\nmtllib absent.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\n"
        "usemtl wood\nf 1/1 2/2 3/3\n"
    )

    assert len(load_mesh(tmp_path / "model.obj").faces) == 1


def test_obj_groups_merge_into_one_mesh(tmp_path: Path) -> None:
    (tmp_path / "parts.obj").write_text(
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\ng seat\nf 1 2 3\ng back\nf 1 2 4\nf 1 3 4\n"
    )

    assert len(load_mesh(tmp_path / "parts.obj").faces) == 3


@pytest.mark.parametrize("suffix", [".obj", ".glb", ".ply", ".stl", ".off"])
def test_garbage_bytes_raise_mesh_load_error_naming_the_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())

    with pytest.raises(MeshLoadError, match="garbage") as caught:
        load_mesh(path)
    assert caught.value.path == path and caught.value.reason


def test_an_empty_file_raises_mesh_load_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.obj"
    path.write_bytes(b"")

    with pytest.raises(MeshLoadError, match="empty file"):
        load_mesh(path)


def test_vertices_without_faces_raise_mesh_load_error(tmp_path: Path) -> None:
    path = tmp_path / "points.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")

    with pytest.raises(MeshLoadError, match="no faces"):
        load_mesh(path)


def test_non_finite_vertices_raise_mesh_load_error(tmp_path: Path) -> None:
    # glTF keeps what it is given; trimesh's text loaders drop NaN faces themselves.
    vertices = [[0.0, 0.0, 0.0], [1.0, np.nan, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    path = tmp_path / "nan.glb"
    trimesh.Trimesh(vertices, [[0, 1, 2], [0, 2, 3]], process=False).export(path)

    with pytest.raises(MeshLoadError, match="non-finite"):
        load_mesh(path)


def test_a_mesh_collapsed_to_a_point_raises_mesh_load_error(tmp_path: Path) -> None:
    path = tmp_path / "point.off"
    path.write_text("OFF\n3 1 0\n1 1 1\n1 1 1\n1 1 1\n3 0 1 2\n")

    with pytest.raises(MeshLoadError, match="zero extent"):
        load_mesh(path)


def test_a_missing_file_and_an_unsupported_suffix_raise_mesh_load_error(tmp_path: Path) -> None:
    with pytest.raises(MeshLoadError, match="no such file"):
        load_mesh(tmp_path / "absent.obj")
    (tmp_path / "model.fbx").write_bytes(b"Kaydara FBX Binary")
    with pytest.raises(MeshLoadError, match="unsupported format"):
        load_mesh(tmp_path / "model.fbx")


def test_normalise_centres_the_bounding_box_and_scales_the_largest_half_extent_to_one() -> None:
    box = trimesh.creation.box(extents=(4.0, 1.0, 2.0))
    box.apply_translation((10.0, -3.0, 7.0))

    normalised = normalise(box)

    np.testing.assert_allclose(normalised.bounds, [[-1.0, -0.25, -0.5], [1.0, 0.25, 0.5]], atol=1e-12)
    np.testing.assert_allclose(box.bounds.mean(axis=0), (10.0, -3.0, 7.0))  # the input is left as it was


def test_file_checksum_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "model.stl"
    data = bytes(range(256)) * 10_000
    path.write_bytes(data)

    assert file_checksum(path) == hashlib.sha256(data).hexdigest()


def heavy_box(faces_at_least: int = 50_000) -> trimesh.Trimesh:
    """A box whose flat sides are tessellated into many small faces: heavy, with nothing a view could show."""
    mesh = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    while len(mesh.faces) < faces_at_least:
        mesh = mesh.subdivide()
    return mesh


def test_a_mesh_within_the_face_budget_is_not_simplified() -> None:
    box = trimesh.creation.box()

    assert simplify(box, max_faces=100, max_error=0.001) is box


def test_a_heavy_mesh_is_simplified_to_the_budget_without_moving_its_surface() -> None:
    heavy = heavy_box()

    light = simplify(heavy, max_faces=2_000, max_error=0.001)

    assert len(light.faces) <= 2_000
    np.testing.assert_allclose(light.bounds, heavy.bounds, atol=0.001 * 2.0)
    assert len(light.vertices) == len(np.unique(light.faces))  # unused vertices are dropped
    assert light.area == pytest.approx(heavy.area, rel=1e-3)


def test_simplification_stops_at_the_error_bound_rather_than_lose_visible_detail() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=5)  # curved everywhere: every collapse moves the surface

    kept = simplify(sphere, max_faces=100, max_error=1e-4)

    assert len(kept.faces) > 100
