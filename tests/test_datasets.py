"""models.datasets: every layout read into one RetrievalDataset; broken records named, or skipped and counted."""

from __future__ import annotations

import datetime
import json
import logging
import pickle
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import trimesh
from PIL import Image

from photo2cad.models.datasets import (
    DatasetError,
    QueryRecord,
    RetrievalDataset,
    read_3d_future,
    read_compcars_3d,
    read_dataset,
    read_folder,
    read_ikea_dev,
    read_pix3d,
    read_stanford_cars_3d,
)
from photo2cad.shapes.pool import ShapeRecord

IKEA_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "ikea-pix3d-dev"


def write_mesh(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    trimesh.creation.box().export(path)
    return path


def write_image(path: Path, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (8, 6)).save(path)
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_json(path: Path, content: Any) -> Path:
    return write_text(path, json.dumps(content, indent=1))


# ---------------------------------------------------------------- the plain folder layout


def make_folder(root: Path, rows: list[str], header: str = "image,shape_id,split,mask,category") -> Path:
    write_mesh(root / "pool" / "chair" / "c1.obj")
    write_mesh(root / "pool" / "table" / "t1" / "model.obj")
    write_mesh(root / "pool" / "lamp.glb")
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_image(root / "photos" / name)
    write_image(root / "masks" / "a.png", mode="L")
    write_text(root / "queries.csv", "\n".join([header, *rows]) + "\n")
    return root


GOOD_ROWS = [
    "photos/a.jpg,chair/c1,train,masks/a.png,",
    "photos/b.jpg,table/t1,val,,table",
    "photos/c.jpg,lamp,test,,",
]


def test_folder_reads_pool_and_queries_with_paths_relative_to_root(tmp_path: Path) -> None:
    dataset = read_folder(make_folder(tmp_path, GOOD_ROWS))

    assert [shape.shape_id for shape in dataset.shapes] == ["chair/c1", "lamp", "table/t1"]
    assert dataset.queries[0] == QueryRecord(
        image=tmp_path / "photos" / "a.jpg",
        shape_id="chair/c1",
        category="chair",
        mask=tmp_path / "masks" / "a.png",
        split="train",
        bbox=None,
    )
    assert [query.split for query in dataset.queries] == ["train", "val", "test"]


def test_folder_query_without_category_takes_its_shapes(tmp_path: Path) -> None:
    dataset = read_folder(make_folder(tmp_path, GOOD_ROWS))

    assert [query.category for query in dataset.queries] == ["chair", "table", None]
    assert dataset.categories() == ("chair", "table")


def test_folder_mask_and_category_columns_are_optional(tmp_path: Path) -> None:
    dataset = read_folder(make_folder(tmp_path, ["photos/c.jpg,lamp,test"], header="image,shape_id,split"))

    assert dataset.queries[0].mask is None


def test_folder_categories_csv_sets_shape_categories(tmp_path: Path) -> None:
    make_folder(tmp_path, GOOD_ROWS)
    write_text(tmp_path / "categories.csv", "shape_id,category\nlamp,lighting\n")

    dataset = read_folder(tmp_path)

    assert dataset.shape("lamp").category == "lighting"
    assert dataset.queries[2].category == "lighting"


def test_folder_missing_image_error_names_line_and_image(tmp_path: Path) -> None:
    make_folder(tmp_path, [*GOOD_ROWS, "photos/gone.jpg,lamp,test,,"])

    with pytest.raises(DatasetError, match=r"queries\.csv: line 5 \(image 'photos/gone\.jpg'\): image not found"):
        read_folder(tmp_path)


def test_folder_missing_mask_error_names_line(tmp_path: Path) -> None:
    make_folder(tmp_path, ["photos/c.jpg,lamp,test,masks/gone.png,"])

    with pytest.raises(DatasetError, match=r"line 2 \(image 'photos/c\.jpg'\): mask not found"):
        read_folder(tmp_path)


def test_folder_unknown_split_error_names_line_and_value(tmp_path: Path) -> None:
    make_folder(tmp_path, ["photos/a.jpg,chair/c1,training,,"])

    with pytest.raises(DatasetError, match=r"line 2 \(image 'photos/a\.jpg'\): unknown split 'training'"):
        read_folder(tmp_path)


def test_folder_query_naming_unknown_shape_error_names_line_and_shape(tmp_path: Path) -> None:
    make_folder(tmp_path, ["photos/a.jpg,chair/nope,train,,"])

    with pytest.raises(DatasetError, match=r"line 2 \(image 'photos/a\.jpg'\): shape 'chair/nope' is not in the pool"):
        read_folder(tmp_path)


def test_folder_csv_line_with_wrong_field_count_error_names_line(tmp_path: Path) -> None:
    make_folder(tmp_path, [*GOOD_ROWS, "photos/a.jpg,chair/c1"])

    with pytest.raises(DatasetError, match=r"queries\.csv: line 5: expected 5 fields, got 2"):
        read_folder(tmp_path)


def test_folder_unparseable_csv_error_names_line(tmp_path: Path) -> None:
    make_folder(tmp_path, ['photos/a.jpg,"chair/c1"x,train,,'])

    with pytest.raises(DatasetError, match=r"queries\.csv: near line 2: malformed CSV"):
        read_folder(tmp_path)


def test_folder_csv_without_a_required_column_raises(tmp_path: Path) -> None:
    make_folder(tmp_path, ["photos/a.jpg,chair/c1"], header="image,shape_id")

    with pytest.raises(DatasetError, match=r"lacks column\(s\) split"):
        read_folder(tmp_path)


def test_folder_without_queries_csv_raises(tmp_path: Path) -> None:
    make_folder(tmp_path, GOOD_ROWS)
    (tmp_path / "queries.csv").unlink()

    with pytest.raises(DatasetError, match=r"queries\.csv not found"):
        read_folder(tmp_path)


def test_folder_query_contradicting_its_shapes_category_is_broken(tmp_path: Path) -> None:
    make_folder(tmp_path, ["photos/a.jpg,chair/c1,train,,sofa"])

    with pytest.raises(DatasetError, match=r"line 2 .*category 'sofa' differs from the pool's 'chair'"):
        read_folder(tmp_path)


def test_skip_mode_drops_broken_records_and_logs_their_count(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_folder(
        tmp_path,
        [*GOOD_ROWS, "photos/gone.jpg,lamp,test,,", "photos/a.jpg,chair/nope,train,,", "photos/b.jpg,lamp,someday,,"],
    )

    with caplog.at_level(logging.WARNING):
        dataset = read_folder(tmp_path, on_missing="skip")

    assert len(dataset.queries) == 3
    assert "skipped 3 broken record(s)" in caplog.text
    assert "photos/gone.jpg" in caplog.text


# ---------------------------------------------------------------- ikea-pix3d-dev's layout


def make_ikea_dev(root: Path, photos_per_shape: dict[str, int]) -> Path:
    rows = ["image,shape_id,category"]
    for shape_id, count in photos_per_shape.items():
        write_mesh(root / "pool" / shape_id / "model.obj")
        for index in range(count):
            image = f"photos/{shape_id.replace('/', '_')}_{index}.jpg"
            write_image(root / image)
            rows.append(f"{image},{shape_id},{shape_id.split('/')[0]}")
    write_text(root / "photos.csv", "\n".join(rows) + "\n")
    return root


def test_ikea_dev_splits_by_photo_with_every_multi_photo_shape_in_both_splits(tmp_path: Path) -> None:
    make_ikea_dev(tmp_path, {"chair/A": 10, "chair/B": 2, "bed/C": 3, "sofa/D": 1})

    dataset = read_ikea_dev(tmp_path, val_fraction=0.3, seed=0)

    train = Counter(query.shape_id for query in dataset.split("train"))
    val = Counter(query.shape_id for query in dataset.split("val"))
    assert (train["chair/A"], val["chair/A"]) == (7, 3)
    assert all(train[shape] >= 1 and val[shape] >= 1 for shape in ("chair/B", "bed/C"))
    assert (train["sofa/D"], val["sofa/D"]) == (1, 0)
    assert dataset.split("test") == ()


def test_ikea_dev_unseen_split_keeps_every_shape_on_one_side(tmp_path: Path) -> None:
    shapes = {f"chair/S{i}": 3 for i in range(10)}
    make_ikea_dev(tmp_path, shapes)

    dataset = read_dataset("ikea-dev-unseen", tmp_path)

    train = {query.shape_id for query in dataset.split("train")}
    val = {query.shape_id for query in dataset.split("val")}
    assert len(val) == 3 and len(train) == 7
    assert train.isdisjoint(val)
    assert dataset.name == "ikea-dev-unseen"


def test_ikea_dev_unseen_folds_hold_out_disjoint_shapes_and_fold_0_is_the_layouts(tmp_path: Path) -> None:
    make_ikea_dev(tmp_path, {f"chair/S{i}": 2 for i in range(10)})

    folds = [read_ikea_dev(tmp_path, unseen_shapes=True, fold=fold) for fold in range(3)]

    held_out = [{query.shape_id for query in dataset.split("val")} for dataset in folds]
    assert [len(shapes) for shapes in held_out] == [3, 3, 3]
    assert len(held_out[0] | held_out[1] | held_out[2]) == 9
    assert folds[0] == read_dataset("ikea-dev-unseen", tmp_path)
    for dataset, shapes in zip(folds, held_out, strict=True):
        assert shapes.isdisjoint(query.shape_id for query in dataset.split("train"))


def test_ikea_dev_refuses_a_fold_past_the_last_or_without_unseen_shapes(tmp_path: Path) -> None:
    make_ikea_dev(tmp_path, {f"chair/S{i}": 2 for i in range(10)})

    with pytest.raises(DatasetError, match=r"fold must be within 0\.\.2 \(10 groups, 3 held out per fold\), not 3"):
        read_ikea_dev(tmp_path, unseen_shapes=True, fold=3)
    with pytest.raises(DatasetError, match="a fold needs unseen_shapes"):
        read_ikea_dev(tmp_path, fold=1)


def test_ikea_dev_split_depends_only_on_the_seed(tmp_path: Path) -> None:
    make_ikea_dev(tmp_path, {"chair/A": 12, "bed/C": 6})

    first, again = read_ikea_dev(tmp_path, seed=0), read_ikea_dev(tmp_path, seed=0)
    other = read_ikea_dev(tmp_path, seed=1)

    assert first == again
    assert [query.split for query in first.queries] != [query.split for query in other.queries]


def test_ikea_dev_model_folder_without_model_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_ikea_dev(tmp_path, {"chair/A": 2})
    write_text(tmp_path / "pool" / "bed" / "IKEA_LEIRVIK" / "3d_keypoints.txt", "0 0 0\n")

    with caplog.at_level(logging.WARNING):
        dataset = read_ikea_dev(tmp_path)

    assert [shape.shape_id for shape in dataset.shapes] == ["chair/A"]
    assert "IKEA_LEIRVIK" in caplog.text


# ---------------------------------------------------------------- Pix3D


def pix3d_record(name: str, category: str, model: str, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "img": f"img/{category}/{name}.jpg",
        "category": category,
        "img_size": [8, 6],
        "mask": f"mask/{category}/{name}.png",
        "model": f"model/{category}/{model}/model.obj",
        "bbox": [1, 2, 6, 5],
        "rot_mat": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        "trans_mat": [0, 0, 2],
        "focal_length": 35.0,
    }
    record.update(fields)
    return record


def make_pix3d(root: Path, photos: int = 10) -> Path:
    models = [("chair", "IKEA_POANG_1"), ("chair", "IKEA_JULES"), ("bed", "IKEA_MALM_2")]
    for category, model in models:
        write_mesh(root / "model" / category / model / "model.obj")
        write_text(root / "model" / category / model / "3d_keypoints.txt", "0 0 0\n")
    records = []
    for index in range(photos):
        category, model = models[index % len(models)]
        record = pix3d_record(f"{index:04d}", category, model)
        write_image(root / record["img"])
        write_image(root / record["mask"], mode="L")
        records.append(record)
    write_json(root / "pix3d.json", records)
    return root


def rewrite_pix3d(root: Path, edit: Any) -> None:
    records = json.loads((root / "pix3d.json").read_text())
    edit(records)
    write_json(root / "pix3d.json", records)


def test_pix3d_shape_id_is_the_model_folder_below_model(tmp_path: Path) -> None:
    dataset = read_pix3d(make_pix3d(tmp_path))

    assert [shape.shape_id for shape in dataset.shapes] == ["bed/IKEA_MALM_2", "chair/IKEA_JULES", "chair/IKEA_POANG_1"]
    assert dataset.queries[0].shape_id == "chair/IKEA_POANG_1"
    assert dataset.shape("bed/IKEA_MALM_2").category == "bed"


def test_pix3d_query_carries_image_mask_category_and_bbox(tmp_path: Path) -> None:
    query = read_pix3d(make_pix3d(tmp_path)).queries[2]

    assert query.image == tmp_path / "img" / "bed" / "0002.jpg"
    assert query.mask == tmp_path / "mask" / "bed" / "0002.png"
    assert query.category == "bed"
    assert query.bbox == (1, 2, 6, 5)


def test_pix3d_seeded_split_is_by_photo_and_repeatable(tmp_path: Path) -> None:
    make_pix3d(tmp_path, photos=20)

    dataset = read_pix3d(tmp_path, val_fraction=0.1, test_fraction=0.2, seed=3)

    assert Counter(query.split for query in dataset.queries) == {"train": 14, "test": 4, "val": 2}
    assert dataset == read_pix3d(tmp_path, val_fraction=0.1, test_fraction=0.2, seed=3)


def test_pix3d_coco_style_split_file_names_the_test_images(tmp_path: Path) -> None:
    make_pix3d(tmp_path)
    split_file = write_json(
        tmp_path / "pix3d_s1_test.json",
        {"images": [{"id": 1, "file_name": "img/chair/0000.jpg"}, {"id": 2, "file_name": "img/bed/0002.jpg"}]},
    )

    dataset = read_pix3d(tmp_path, split_file=split_file, val_fraction=0.25)

    assert [query.image.name for query in dataset.split("test")] == ["0000.jpg", "0002.jpg"]
    assert len(dataset.split("val")) == 2


def test_pix3d_split_file_may_be_a_list_of_image_paths(tmp_path: Path) -> None:
    make_pix3d(tmp_path)
    split_file = write_json(tmp_path / "test_images.json", ["img/chair/0003.jpg"])

    dataset = read_pix3d(tmp_path, split_file=split_file)

    assert [query.image.name for query in dataset.split("test")] == ["0003.jpg"]


def test_pix3d_split_file_naming_an_unknown_image_raises(tmp_path: Path) -> None:
    make_pix3d(tmp_path)
    split_file = write_json(tmp_path / "test_images.json", ["img/chair/9999.jpg"])

    with pytest.raises(DatasetError, match=r"test_images\.json: images\[0\] \('img/chair/9999\.jpg'\): image not in"):
        read_pix3d(tmp_path, split_file=split_file)


def test_pix3d_missing_model_error_names_the_record(tmp_path: Path) -> None:
    make_pix3d(tmp_path)
    (tmp_path / "model" / "bed" / "IKEA_MALM_2" / "model.obj").unlink()

    with pytest.raises(DatasetError, match=r"pix3d\.json: record 2 \(img 'img/bed/0002\.jpg'\): model not found"):
        read_pix3d(tmp_path)


def test_pix3d_missing_image_error_names_the_record(tmp_path: Path) -> None:
    make_pix3d(tmp_path)
    (tmp_path / "img" / "chair" / "0004.jpg").unlink()

    with pytest.raises(DatasetError, match=r"record 4 \(img 'img/chair/0004\.jpg'\): image not found"):
        read_pix3d(tmp_path)


def test_pix3d_record_without_model_field_names_the_record(tmp_path: Path) -> None:
    make_pix3d(tmp_path)
    rewrite_pix3d(tmp_path, lambda records: records[1].pop("model"))

    with pytest.raises(DatasetError, match=r"record 1 \(img 'img/chair/0001\.jpg'\): field 'model' missing"):
        read_pix3d(tmp_path)


def test_pix3d_malformed_json_error_names_the_line(tmp_path: Path) -> None:
    make_pix3d(tmp_path)
    write_text(tmp_path / "pix3d.json", '[\n {"img": "img/chair/0000.jpg",\n  "model": }\n]\n')

    with pytest.raises(DatasetError, match=r"pix3d\.json: malformed JSON at line 3"):
        read_pix3d(tmp_path)


def test_pix3d_without_annotation_file_raises(tmp_path: Path) -> None:
    make_pix3d(tmp_path)
    (tmp_path / "pix3d.json").unlink()

    with pytest.raises(DatasetError, match=r"annotation file not found: .*pix3d\.json"):
        read_pix3d(tmp_path)


def test_pix3d_skip_mode_keeps_the_split_of_the_other_photos(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_pix3d(tmp_path, photos=12)
    complete = read_pix3d(tmp_path)
    (tmp_path / "img" / "chair" / "0003.jpg").unlink()

    with caplog.at_level(logging.WARNING):
        partial = read_pix3d(tmp_path, on_missing="skip")

    assert [query for query in complete.queries if query.image.name != "0003.jpg"] == list(partial.queries)
    assert "skipped 1 broken record(s)" in caplog.text


# ---------------------------------------------------------------- 3D-FUTURE


def make_3d_future(root: Path, evaluation: str = "test") -> Path:
    models = root / "3D-FUTURE-model"
    for model_id in ("m-bed", "m-sofa", "m-unseen"):
        write_mesh(models / model_id / "normalized_model.obj")
        write_mesh(models / model_id / "raw_model.obj")
    write_json(
        models / "model_info.json",
        [
            {"model_id": "m-bed", "super-category": "Bed", "category": "King-size Bed"},
            {"model_id": "m-sofa", "super-category": "Sofa", "category": "Three-seat Sofa"},
            {"model_id": "m-unseen", "super-category": "Sofa", "category": "L-shaped Sofa"},
        ],
    )
    scene = root / "3D-FUTURE-scene"
    for folder, names in (("train", ["0000000", "0000001"]), (evaluation, ["0000000"])):
        for name in names:
            write_image(scene / folder / "image" / f"{name}.jpg")
            write_image(scene / folder / "idmap" / f"{name}.png")
    categories = [{"id": 1, "category_name": "Bed"}, {"id": 2, "category_name": "Sofa"}]
    write_json(
        scene / "GT" / "train_set.json",
        {
            "categories": categories,
            "images": [{"id": 1, "file_name": "0000000"}, {"id": 2, "file_name": "0000001"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 3], "model_id": "m-bed"},
                {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 2, 2], "model_id": "m-sofa"},
                {"id": 3, "image_id": 2, "category_id": 2, "bbox": [0, 0, 2, 2], "model_id": None},
            ],
        },
    )
    write_json(
        scene / "GT" / f"{evaluation}_set.json",
        {
            "categories": categories,
            "images": [{"id": 7, "file_name": "0000000"}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 2, "bbox": [2, 1, 3, 3], "model_id": "m-sofa"}],
        },
    )
    return root


def rewrite_train_set(root: Path, edit: Any) -> None:
    path = root / "3D-FUTURE-scene" / "GT" / "train_set.json"
    content = json.loads(path.read_text())
    edit(content)
    write_json(path, content)


def test_3d_future_train_set_is_train_and_validation_set_is_test(tmp_path: Path) -> None:
    dataset = read_3d_future(make_3d_future(tmp_path))

    assert [(query.shape_id, query.split) for query in dataset.queries] == [
        ("m-bed", "train"),
        ("m-sofa", "train"),
        ("m-sofa", "test"),
    ]
    assert dataset.queries[2].image == tmp_path / "3D-FUTURE-scene" / "test" / "image" / "0000000.jpg"


def test_3d_future_pool_is_every_normalized_model_including_unphotographed_ones(tmp_path: Path) -> None:
    dataset = read_3d_future(make_3d_future(tmp_path))

    assert [shape.shape_id for shape in dataset.shapes] == ["m-bed", "m-sofa", "m-unseen"]
    assert dataset.shape("m-unseen").path.name == "normalized_model.obj"


def test_3d_future_categories_come_from_model_info_super_category(tmp_path: Path) -> None:
    dataset = read_3d_future(make_3d_future(tmp_path))

    assert dataset.categories() == ("Bed", "Sofa")
    assert [query.category for query in dataset.queries] == ["Bed", "Sofa", "Sofa"]


def test_3d_future_bbox_becomes_corners(tmp_path: Path) -> None:
    dataset = read_3d_future(make_3d_future(tmp_path))

    assert dataset.queries[0].bbox == (1, 1, 5, 4)


def test_3d_future_annotation_without_model_is_not_a_query(tmp_path: Path) -> None:
    dataset = read_3d_future(make_3d_future(tmp_path))

    assert all(query.image.name != "0000001.jpg" for query in dataset.queries)


def test_3d_future_evaluation_folder_may_be_named_val(tmp_path: Path) -> None:
    dataset = read_3d_future(make_3d_future(tmp_path, evaluation="val"))

    assert dataset.split("test")[0].image.parent.parent.name == "val"


def test_3d_future_unknown_model_error_names_the_annotation(tmp_path: Path) -> None:
    make_3d_future(tmp_path)
    rewrite_train_set(tmp_path, lambda content: content["annotations"][1].update(model_id="m-gone"))

    with pytest.raises(
        DatasetError,
        match=r"train_set\.json: annotations\[1\] \(image_id 1, image '0000000'\): model 'm-gone' not found",
    ):
        read_3d_future(tmp_path)


def test_3d_future_missing_image_error_names_the_annotation(tmp_path: Path) -> None:
    make_3d_future(tmp_path)
    (tmp_path / "3D-FUTURE-scene" / "train" / "image" / "0000000.jpg").unlink()

    with pytest.raises(DatasetError, match=r"annotations\[0\] \(image_id 1, image '0000000'\): image not found"):
        read_3d_future(tmp_path)


def test_3d_future_without_ground_truth_raises(tmp_path: Path) -> None:
    make_3d_future(tmp_path)
    (tmp_path / "3D-FUTURE-scene" / "GT" / "test_set.json").unlink()

    with pytest.raises(DatasetError, match=r"annotation file not found: .*test_set\.json"):
        read_3d_future(tmp_path)


# ---------------------------------------------------------------- StanfordCars 3D / CompCars 3D

# The release's files are Python 2 pickles (protocol 0, byte strings): this is one, byte for byte in its format.
PY2_ANNOTATION = (
    b"(dp0\nS'00001.jpg'\np1\n(dp2\nS'distance'\np3\nF1.5\nsS'model_id'\np4\nS'car-a'\np5\nssS'00002.jpg'\np6\n"
    b"(dp7\ng3\nF2.0\nsg4\nS'car-b'\np8\nss."
)


def make_stanford_cars(root: Path) -> Path:
    for model_id in ("car-a", "car-b", "car-c"):
        write_mesh(root / "CAD" / "02958343" / model_id / "model.obj")
    annotations = root / "Anno3D" / "StanfordCars"
    annotations.mkdir(parents=True)
    (annotations / "train_anno.pkl").write_bytes(PY2_ANNOTATION)
    (annotations / "test_anno.pkl").write_bytes(pickle.dumps({"00001.jpg": {"model_id": "car-a", "f": 346.4}}, 0))
    (annotations / "train_anno_v2.pkl").write_bytes(pickle.dumps({"00002.jpg": {"model_id": "car-c"}}, 0))
    (annotations / "test_anno_v2.pkl").write_bytes(pickle.dumps({"00001.jpg": {"model_id": "car-b"}}, 0))
    for name in ("00001.jpg", "00002.jpg"):
        write_image(root / "Image" / "StanfordCars" / "cars_train" / name)
    write_image(root / "Image" / "StanfordCars" / "cars_test" / "00001.jpg")
    return root


def test_stanford_cars_reads_both_splits_with_annotated_shapenet_cars_as_pool(tmp_path: Path) -> None:
    dataset = read_stanford_cars_3d(make_stanford_cars(tmp_path))

    assert [(query.image.parent.name, query.image.name, query.shape_id, query.split) for query in dataset.queries] == [
        ("cars_train", "00001.jpg", "car-a", "train"),
        ("cars_train", "00002.jpg", "car-b", "train"),
        ("cars_test", "00001.jpg", "car-a", "test"),
    ]
    assert [shape.shape_id for shape in dataset.shapes] == ["car-a", "car-b"]
    assert dataset.categories() == ("car",)


def test_stanford_cars_v2_annotations_are_read_on_request(tmp_path: Path) -> None:
    dataset = read_stanford_cars_3d(make_stanford_cars(tmp_path), annotation_version="v2")

    assert [(query.shape_id, query.split) for query in dataset.queries] == [("car-c", "train"), ("car-b", "test")]


def test_compcars_image_names_are_paths_below_the_image_folder(tmp_path: Path) -> None:
    write_mesh(tmp_path / "CAD" / "02958343" / "car-a" / "model.obj")
    annotations = tmp_path / "Anno3D" / "CompCars"
    annotations.mkdir(parents=True)
    (annotations / "train_anno.pkl").write_bytes(pickle.dumps({"100/213/2010/27bb.jpg": {"model_id": "car-a"}}, 0))
    (annotations / "test_anno.pkl").write_bytes(pickle.dumps({}, 0))
    image = write_image(tmp_path / "Image" / "CompCars" / "image" / "100" / "213" / "2010" / "27bb.jpg")

    dataset = read_compcars_3d(tmp_path)

    assert dataset.queries == (
        QueryRecord(image=image, shape_id="car-a", category="car", mask=None, split="train", bbox=None),
    )


def test_cars_pickle_holding_anything_but_plain_data_is_refused(tmp_path: Path) -> None:
    make_stanford_cars(tmp_path)
    (tmp_path / "Anno3D" / "StanfordCars" / "train_anno.pkl").write_bytes(
        pickle.dumps({"00001.jpg": {"model_id": "car-a", "date": datetime.date(2018, 1, 1)}})
    )

    with pytest.raises(DatasetError, match=r"train_anno\.pkl: not a readable annotation pickle: refusing to load"):
        read_stanford_cars_3d(tmp_path)


def test_cars_missing_model_error_names_the_image(tmp_path: Path) -> None:
    make_stanford_cars(tmp_path)
    (tmp_path / "CAD" / "02958343" / "car-b" / "model.obj").unlink()

    with pytest.raises(DatasetError, match=r"train_anno\.pkl: image '00002\.jpg': model not found"):
        read_stanford_cars_3d(tmp_path)


def test_cars_missing_image_error_names_the_image(tmp_path: Path) -> None:
    make_stanford_cars(tmp_path)
    (tmp_path / "Image" / "StanfordCars" / "cars_test" / "00001.jpg").unlink()

    with pytest.raises(DatasetError, match=r"test_anno\.pkl: image '00001\.jpg': image not found"):
        read_stanford_cars_3d(tmp_path)


# ---------------------------------------------------------------- the common structure and the dispatcher


def test_read_dataset_dispatches_on_the_layout_name(tmp_path: Path) -> None:
    make_folder(tmp_path, GOOD_ROWS)

    assert read_dataset("folder", tmp_path) == read_folder(tmp_path)


def test_read_dataset_rejects_an_unknown_layout(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset layout 'shapenet'"):
        read_dataset("shapenet", tmp_path)


def test_dataset_refuses_a_query_naming_a_shape_outside_its_pool(tmp_path: Path) -> None:
    shape = ShapeRecord(shape_id="a", path=tmp_path / "a.obj", category=None)
    query = QueryRecord(image=tmp_path / "p.jpg", shape_id="b", category=None, mask=None, split="train", bbox=None)

    with pytest.raises(DatasetError, match="query 0 .* names unknown shape 'b'"):
        RetrievalDataset(name="tiny", shapes=(shape,), queries=(query,))


def test_dataset_rejects_an_unknown_split_name(tmp_path: Path) -> None:
    dataset = read_folder(make_folder(tmp_path, GOOD_ROWS))

    with pytest.raises(ValueError, match="unknown split 'validation'"):
        dataset.split("validation")


@pytest.mark.skipif(not IKEA_DEV.is_dir(), reason="ikea-pix3d-dev is not available on this machine")
def test_real_ikea_dev_reads_458_photos_and_reports_the_two_models_missing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        dataset = read_ikea_dev(IKEA_DEV)

    assert len(dataset.queries) == 458
    assert len({query.shape_id for query in dataset.queries}) == 40
    assert "bed/IKEA_LEIRVIK" in caplog.text and "sofa/IKEA_SKOGABY" in caplog.text
    assert "2 entries skipped" in caplog.text
