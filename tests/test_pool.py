"""shapes.pool.scan_pool: which files of a pool folder are shapes, under which ids and categories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trimesh

from photo2cad.shapes.pool import MESH_SUFFIXES, PoolError, scan_pool, shape_id_for_mesh


def write_mesh(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    trimesh.creation.box().export(path)
    return path


def write_text(path: Path, text: str = "x\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def ids(root: Path, categories_csv: Path | None = None) -> list[str]:
    return [shape.shape_id for shape in scan_pool(root, categories_csv).shapes]


def test_mesh_file_is_a_shape_named_by_its_relative_path_without_suffix(tmp_path: Path) -> None:
    write_mesh(tmp_path / "lamp.obj")
    mesh = write_mesh(tmp_path / "chair" / "wooden" / "c1.ply")

    listing = scan_pool(tmp_path)

    assert [shape.shape_id for shape in listing.shapes] == ["chair/wooden/c1", "lamp"]
    assert listing.shapes[0].path == mesh
    assert listing.skipped == ()


def test_folder_holding_model_file_is_a_shape_named_by_the_folder(tmp_path: Path) -> None:
    model = write_mesh(tmp_path / "chair" / "IKEA_POANG_1" / "model.obj")

    (shape,) = scan_pool(tmp_path).shapes

    assert shape.shape_id == "chair/IKEA_POANG_1"
    assert shape.path == model


def test_files_beside_a_model_file_are_not_shapes(tmp_path: Path) -> None:
    folder = tmp_path / "sofa" / "IKEA_KIVIK_1"
    write_mesh(folder / "model.obj")
    write_text(folder / "kivik_obj0_object.mtl")
    write_text(folder / "3d_keypoints.txt")
    write_text(folder / "kivik_obj0_object" / "texture.jpg")
    write_mesh(folder / "parts" / "cushion.obj")

    assert ids(tmp_path) == ["sofa/IKEA_KIVIK_1"]


def test_every_supported_suffix_is_listed_whatever_its_case(tmp_path: Path) -> None:
    for index, suffix in enumerate(MESH_SUFFIXES):
        write_mesh(tmp_path / f"shape{index}{suffix.upper() if index % 2 else suffix}")

    assert ids(tmp_path) == [f"shape{index}" for index in range(len(MESH_SUFFIXES))]


def test_other_files_are_neither_shapes_nor_skipped(tmp_path: Path) -> None:
    write_mesh(tmp_path / "a.obj")
    write_text(tmp_path / "a.mtl")
    write_text(tmp_path / "README.md")
    write_text(tmp_path / "textures" / "wood.png")
    write_mesh(tmp_path / ".hidden" / "b.obj")

    listing = scan_pool(tmp_path)

    assert [shape.shape_id for shape in listing.shapes] == ["a"]
    assert listing.skipped == ()


def test_model_folder_without_model_file_is_skipped_with_a_reason(tmp_path: Path) -> None:
    write_mesh(tmp_path / "bed" / "IKEA_MALM_1" / "model.obj")
    broken = tmp_path / "bed" / "IKEA_LEIRVIK"
    write_text(broken / "3d_keypoints.txt")
    write_text(broken / "860450a2_obj0_object.mtl")

    listing = scan_pool(tmp_path)

    assert [shape.shape_id for shape in listing.shapes] == ["bed/IKEA_MALM_1"]
    assert [entry.path for entry in listing.skipped] == [broken]
    assert "without a model file" in listing.skipped[0].reason


def test_second_mesh_for_the_same_shape_id_is_skipped_in_favour_of_obj(tmp_path: Path) -> None:
    obj = write_mesh(tmp_path / "table.obj")
    ply = write_mesh(tmp_path / "table.ply")

    listing = scan_pool(tmp_path)

    assert [(shape.shape_id, shape.path) for shape in listing.shapes] == [("table", obj)]
    assert [entry.path for entry in listing.skipped] == [ply]
    assert "duplicate shape_id 'table'" in listing.skipped[0].reason


def test_category_is_the_first_folder_or_none_at_top_level(tmp_path: Path) -> None:
    write_mesh(tmp_path / "chair" / "IKEA_POANG_1" / "model.obj")
    write_mesh(tmp_path / "lamp.obj")

    categories = {shape.shape_id: shape.category for shape in scan_pool(tmp_path).shapes}

    assert categories == {"chair/IKEA_POANG_1": "chair", "lamp": None}


def test_categories_csv_sets_the_category_of_the_shapes_it_lists(tmp_path: Path) -> None:
    pool = tmp_path / "pool"
    write_mesh(pool / "lamp.obj")
    write_mesh(pool / "chair" / "c1.obj")
    csv_path = write_text(tmp_path / "categories.csv", "shape_id,category\nlamp,lighting\n")

    categories = {shape.shape_id: shape.category for shape in scan_pool(pool, csv_path).shapes}

    assert categories == {"lamp": "lighting", "chair/c1": "chair"}


def test_malformed_categories_csv_line_raises_naming_the_line(tmp_path: Path) -> None:
    write_mesh(tmp_path / "pool" / "lamp.obj")
    csv_path = write_text(tmp_path / "categories.csv", "shape_id,category\nlamp,lighting\nchair,seat,extra\n")

    with pytest.raises(PoolError, match=r"categories\.csv: line 3: expected 2 fields"):
        scan_pool(tmp_path / "pool", csv_path)


def test_categories_csv_without_its_columns_raises(tmp_path: Path) -> None:
    write_mesh(tmp_path / "pool" / "lamp.obj")
    csv_path = write_text(tmp_path / "categories.csv", "id,label\nlamp,lighting\n")

    with pytest.raises(PoolError, match="lacks column"):
        scan_pool(tmp_path / "pool", csv_path)


def test_symlink_leading_outside_the_root_is_skipped_and_reported(tmp_path: Path) -> None:
    outside = write_mesh(tmp_path / "elsewhere" / "secret.obj")
    pool = tmp_path / "pool"
    write_mesh(pool / "a.obj")
    os.symlink(outside, pool / "b.obj")
    os.symlink(outside.parent, pool / "linked_folder")

    listing = scan_pool(pool)

    assert [shape.shape_id for shape in listing.shapes] == ["a"]
    assert sorted(entry.path.name for entry in listing.skipped) == ["b.obj", "linked_folder"]
    assert all("outside the pool root" in entry.reason for entry in listing.skipped)


def test_symlinked_folder_inside_the_root_is_listed_once_under_its_own_path(tmp_path: Path) -> None:
    write_mesh(tmp_path / "chair" / "c1.obj")
    os.symlink(tmp_path / "chair", tmp_path / "a_alias")
    os.symlink(tmp_path / "chair", tmp_path / "chair" / "loop")

    listing = scan_pool(tmp_path)

    assert [shape.shape_id for shape in listing.shapes] == ["chair/c1"]
    assert sorted(entry.path.name for entry in listing.skipped) == ["a_alias", "loop"]


def test_listing_is_sorted_and_repeatable(tmp_path: Path) -> None:
    for name in ("zeta.obj", "alpha/model.glb", "mid/b.stl", "mid/a.off"):
        write_mesh(tmp_path / name)

    first, second = scan_pool(tmp_path), scan_pool(tmp_path)

    assert [shape.shape_id for shape in first.shapes] == ["alpha", "mid/a", "mid/b", "zeta"]
    assert first == second


def test_missing_root_raises(tmp_path: Path) -> None:
    with pytest.raises(PoolError, match="pool folder not found"):
        scan_pool(tmp_path / "absent")


@pytest.mark.parametrize(
    ("relative_path", "shape_id"),
    [("chair/IKEA_POANG_1/model.obj", "chair/IKEA_POANG_1"), ("chair/c1.ply", "chair/c1"), ("model.obj", "model")],
)
def test_shape_id_for_mesh_matches_the_scan(relative_path: str, shape_id: str) -> None:
    assert shape_id_for_mesh(relative_path) == shape_id
