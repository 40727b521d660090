"""The demo catalogue: reproducible, distinct shapes in every category and format, photos split by photo, readable."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photo2cad.models.datasets import demo
from photo2cad.models.datasets.demo import CATEGORIES, FORMATS, MAX_FACES, design_catalogue, furniture, generate_demo
from photo2cad.models.datasets.demo import catalogue as demo_catalogue
from photo2cad.models.datasets.folder import read_folder
from photo2cad.shapes.meshes import load_mesh, normalise
from photo2cad.shapes.pool import scan_pool
from photo2cad.shapes.shaded import load_textured

SHAPES = 3
PHOTOS = 2
SIZE = 96


def _generate(root: Path, **overrides: int) -> demo.DemoSummary:
    options = {"shapes_per_category": SHAPES, "photos_per_shape": PHOTOS, "seed": 0, "photo_size": SIZE}
    options.update(overrides)
    return generate_demo(root, progress=False, **options)


def _files(root: Path) -> dict[str, bytes]:
    # .complete records the run's duration, which no two runs share.
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != ".complete"
    }


def _queries(root: Path) -> list[dict[str, str]]:
    with (root / "queries.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    _generate(root)
    return root


def test_the_same_seed_writes_the_same_files(catalogue: Path, tmp_path: Path) -> None:
    _generate(tmp_path)

    assert _files(tmp_path) == _files(catalogue)


def test_another_seed_draws_other_shapes() -> None:
    first = [shape.parameters for shape in design_catalogue(SHAPES, seed=0)]
    second = [shape.parameters for shape in design_catalogue(SHAPES, seed=1)]

    assert all(a != b for a, b in zip(first, second, strict=True))


def test_every_category_and_format_is_in_the_pool(catalogue: Path) -> None:
    shapes = scan_pool(catalogue / "pool").shapes

    assert {shape.category for shape in shapes} == set(CATEGORIES)
    assert {shape.path.suffix[1:] for shape in shapes} == set(FORMATS)
    assert len(shapes) == SHAPES * len(CATEGORIES)


def test_queries_name_the_shape_ids_scan_pool_derives(catalogue: Path) -> None:
    pool_ids = {shape.shape_id for shape in scan_pool(catalogue / "pool").shapes}
    queries = _queries(catalogue)

    assert {row["shape_id"] for row in queries} == pool_ids
    for row in queries:
        category, name = row["shape_id"].split("/")
        assert row["category"] == category and name.startswith(f"{category}_")


def test_shapes_of_a_category_differ_in_geometry() -> None:
    shapes = design_catalogue(12, seed=0)

    for category in CATEGORIES:
        meshes = [normalise(shape.mesh()) for shape in shapes if shape.category == category]
        for first, second in itertools.combinations(meshes, 2):
            same_size = np.allclose(first.extents, second.extents, atol=0.02)
            same_area = abs(first.area - second.area) < 0.02 * first.area
            assert not (same_size and same_area and len(first.faces) == len(second.faces))


def test_no_two_shapes_of_a_category_draw_near_identical_parameters() -> None:
    shapes = design_catalogue(30, seed=0)

    for category in CATEGORIES:
        spec = furniture.SPECS[category]
        vectors = [furniture.parameter_vector(spec, s.parameters) for s in shapes if s.category == category]
        distances = [np.linalg.norm(a - b) for a, b in itertools.combinations(vectors, 2)]
        assert min(distances) >= demo_catalogue.MIN_PARAMETER_DISTANCE


def test_every_mesh_stays_under_the_face_budget() -> None:
    assert max(len(shape.mesh().faces) for shape in design_catalogue(30, seed=0)) < MAX_FACES


def test_every_shape_has_photos_in_train_and_test(catalogue: Path) -> None:
    splits: dict[str, set[str]] = {}
    for row in _queries(catalogue):
        splits.setdefault(row["shape_id"], set()).add(row["split"])

    assert len(splits) == SHAPES * len(CATEGORIES)
    assert all(found == {"train", "test"} for found in splits.values())


def test_four_photos_split_two_train_one_val_one_test(tmp_path: Path) -> None:
    summary = _generate(tmp_path, shapes_per_category=1, photos_per_shape=4, photo_size=32)

    per_shape: dict[str, list[str]] = {}
    for row in _queries(tmp_path):
        per_shape.setdefault(row["shape_id"], []).append(row["split"])
    assert all(sorted(splits) == ["test", "train", "train", "val"] for splits in per_shape.values())
    assert summary.splits == {"train": 8, "val": 4, "test": 4}


def test_read_folder_reads_the_catalogue(catalogue: Path) -> None:
    dataset = read_folder(catalogue)

    assert len(dataset.shapes) == SHAPES * len(CATEGORIES)
    assert len(dataset.queries) == SHAPES * len(CATEGORIES) * PHOTOS
    assert dataset.categories() == CATEGORIES
    assert all(query.mask is not None and query.mask.is_file() for query in dataset.queries)


def test_photos_frame_the_object_like_a_crop(catalogue: Path) -> None:
    for row in _queries(catalogue):
        photo = Image.open(catalogue / row["image"])
        mask = np.asarray(Image.open(catalogue / row["mask"])) > 127
        rows, columns = np.nonzero(mask)
        side = max(np.ptp(rows), np.ptp(columns)) + 1
        centre = np.array([rows.min() + rows.max(), columns.min() + columns.max()]) / 2.0

        assert photo.size == (SIZE, SIZE) and mask.shape == (SIZE, SIZE)
        assert 0.45 * SIZE <= side <= 0.95 * SIZE, row["image"]
        assert np.abs(centre - (SIZE - 1) / 2.0).max() < 0.1 * SIZE, row["image"]


def test_obj_glb_and_ply_files_keep_their_colours(catalogue: Path) -> None:
    for shape in scan_pool(catalogue / "pool").shapes:
        if shape.path.suffix in (".obj", ".glb", ".ply"):
            visuals = [geometry.visual for geometry in load_textured(shape.path).geometry.values()]
            assert all(visual.defined for visual in visuals), shape.path


def test_obj_files_bring_material_libraries_named_after_them(catalogue: Path) -> None:
    for obj in (catalogue / "pool").rglob("*.obj"):
        library = obj.with_suffix(".mtl")
        assert f"mtllib {library.name}" in obj.read_text()
        for line in library.read_text().splitlines():
            if line.startswith("map_Kd"):
                texture = line.split(maxsplit=1)[1]
                assert texture.startswith(obj.stem + "_") and (obj.parent / texture).is_file()


def test_pool_files_load_as_meshes(catalogue: Path) -> None:
    for shape in scan_pool(catalogue / "pool").shapes:
        assert len(load_mesh(shape.path).faces) > 0


def test_a_complete_catalogue_is_returned_without_work(catalogue: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_: object) -> None:
        raise AssertionError("nothing should be generated again")

    monkeypatch.setattr(demo_catalogue, "design_catalogue", fail)
    summary = _generate(catalogue)

    assert summary.reused and summary.shapes == SHAPES * len(CATEGORIES)


def test_a_run_stopped_part_way_resumes_to_the_same_catalogue(
    catalogue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_photos = demo_catalogue._write_photos
    calls = {"count": 0}

    def stop_at_the_fifth_shape(*args: object) -> None:
        calls["count"] += 1
        if calls["count"] == 5:
            raise KeyboardInterrupt
        write_photos(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(demo_catalogue, "_write_photos", stop_at_the_fifth_shape)
    with pytest.raises(KeyboardInterrupt):
        _generate(tmp_path)
    monkeypatch.setattr(demo_catalogue, "_write_photos", write_photos)
    before = {path: path.stat().st_mtime_ns for path in (tmp_path / "photos").iterdir()}

    _generate(tmp_path)

    assert _files(tmp_path) == _files(catalogue)
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in before.items())


def test_other_parameters_replace_the_previous_catalogue(tmp_path: Path) -> None:
    _generate(tmp_path, photos_per_shape=2, photo_size=32)
    summary = _generate(tmp_path, photos_per_shape=1, photo_size=32)

    assert not summary.reused
    assert len(list((tmp_path / "photos").iterdir())) == summary.photos == SHAPES * len(CATEGORIES)


def test_a_folder_holding_other_data_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pool").mkdir()

    with pytest.raises(FileExistsError):
        _generate(tmp_path)
