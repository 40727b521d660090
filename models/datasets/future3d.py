"""3D-FUTURE (Fu et al., 2020): rendered room photos with instance annotations naming the furniture model.

Layout (the public release as its README documents it; ``root`` holds both unpacked archives)::

    root/
      3D-FUTURE-scene/
        train/image/<file_name>.jpg      train/idmap/<file_name>.png
        test/image/<file_name>.jpg       test/idmap/<file_name>.png     (the release's validation set)
        GT/train_set.json                GT/test_set.json
      3D-FUTURE-model/
        model_info.json                  optional: [{"model_id", "super-category", "category", "style", ...}, ...]
        <model_id>/normalized_model.obj  (+ raw_model.obj, model.mtl, texture.png, image.jpg)

``GT/*_set.json`` are COCO style: ``images`` [{id, file_name, width, height}], ``annotations`` [{id, image_id,
category_id, bbox [x, y, w, h], segmentation, model_id, texture_id, pose, fov, style, theme, material}],
``categories``. ``file_name`` is the image's stem (``"0000000"``); a name with a suffix is used as is. Some copies name
the evaluation half ``val/`` and ``GT/val_set.json``; that is accepted when ``test`` is absent.

Splits: train_set.json -> "train"; the validation set -> "test" (no "val": cut one from train if needed).
One query per annotated instance, so a room photo appears once per piece of furniture in it, with its instance
``bbox`` (converted to x0, y0, x1, y1). Annotations whose ``model_id`` is null (instances without a released model) are
not queries; their count is logged at INFO.

Pool: every folder of 3D-FUTURE-model with a normalized_model.obj (shape_id = the folder name, the model id), so the
test pool includes models that no training photo shows. A shape's category is its model_info.json "super-category"
(7 classes; else "category"), and a query's category is its shape's, so both sides always agree; None without
model_info.json.

Not read yet (left open): the instance masks. ``QueryRecord.mask`` is None: the idmaps hold instance ids whose
mapping to annotation ids is not documented in the release, and the COCO ``segmentation`` is not decoded here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from photo2cad.models.datasets._common import OnMissing, RecordProblems, is_number, load_json
from photo2cad.models.datasets.records import DatasetError, QueryRecord, RetrievalDataset, Split
from photo2cad.shapes.pool import ShapeRecord

logger = logging.getLogger(__name__)

SCENE_FOLDER = "3D-FUTURE-scene"
MODEL_FOLDER = "3D-FUTURE-model"
MESH_NAME = "normalized_model.obj"


def read_3d_future(root: Path, on_missing: OnMissing = "error") -> RetrievalDataset:
    root = Path(root)
    problems = RecordProblems("3d-future", on_missing, logger)
    scene = root / SCENE_FOLDER
    shapes = _read_pool(root / MODEL_FOLDER)
    pool = {shape.shape_id: shape for shape in shapes}

    queries: list[QueryRecord] = []
    halves: tuple[tuple[str, Split], ...] = (("train", "train"), (_evaluation_folder(scene), "test"))
    for folder, split in halves:
        queries.extend(_read_split(scene, folder, split, pool, problems))
    problems.log()
    return RetrievalDataset(name="3d-future", shapes=shapes, queries=tuple(queries), pool_root=root / MODEL_FOLDER)


def _evaluation_folder(scene: Path) -> str:
    for folder in ("test", "val"):
        if (scene / "GT" / f"{folder}_set.json").is_file():
            return folder
    raise DatasetError(f"3D-FUTURE annotation file not found: {scene / 'GT' / 'test_set.json'} (nor val_set.json)")


def _read_pool(models: Path) -> tuple[ShapeRecord, ...]:
    if not models.is_dir():
        raise DatasetError(f"3D-FUTURE model folder not found: {models}")
    categories = _read_model_info(models)
    shapes: list[ShapeRecord] = []
    without_mesh: list[str] = []
    for folder in sorted(path for path in models.iterdir() if path.is_dir() and not path.name.startswith(".")):
        mesh = folder / MESH_NAME
        if mesh.is_file():
            shapes.append(ShapeRecord(shape_id=folder.name, path=mesh, category=categories.get(folder.name)))
        else:
            without_mesh.append(folder.name)
    if without_mesh:
        logger.warning(
            "3d-future: %d model folder(s) without %s left out of the pool, e.g. %s",
            len(without_mesh),
            MESH_NAME,
            ", ".join(without_mesh[:5]),
        )
    return tuple(shapes)


def _read_model_info(models: Path) -> dict[str, str | None]:
    source = next(
        (path for path in (models / "model_info.json", models.parent / "model_info.json") if path.is_file()), None
    )
    if source is None:
        logger.info("3d-future: no model_info.json next to %s: categories are unknown", models)
        return {}
    entries = load_json(source, "3D-FUTURE model_info.json")
    if not isinstance(entries, list):
        raise DatasetError(f"{source}: expected a JSON list of models, found {type(entries).__name__}")
    categories: dict[str, str | None] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("model_id"), str):
            raise DatasetError(f"{source}: entry {index}: expected an object with a string 'model_id', found {entry!r}")
        category = entry.get("super-category") or entry.get("category")
        categories[entry["model_id"]] = category if isinstance(category, str) else None
    return categories


def _read_split(
    scene: Path, folder: str, split: Split, pool: dict[str, ShapeRecord], problems: RecordProblems
) -> list[QueryRecord]:
    source = scene / "GT" / f"{folder}_set.json"
    content = load_json(source, "3D-FUTURE annotation file")
    if not (isinstance(content, dict) and isinstance(content.get("images"), list)):
        raise DatasetError(f"{source}: expected a COCO-style object with 'images' and 'annotations' lists")
    annotations = content.get("annotations")
    if not isinstance(annotations, list):
        raise DatasetError(f"{source}: expected a COCO-style object with 'images' and 'annotations' lists")

    file_names: dict[Any, str] = {}
    for index, image in enumerate(content["images"]):
        if not (isinstance(image, dict) and "id" in image and isinstance(image.get("file_name"), str)):
            problems.report(
                source, f"images[{index}]", f"expected an object with 'id' and 'file_name', found {image!r}"
            )
            continue
        file_names[image["id"]] = image["file_name"]

    image_exists: dict[Path, bool] = {}
    queries: list[QueryRecord] = []
    without_model = 0
    for index, annotation in enumerate(annotations):
        if not isinstance(annotation, dict):
            problems.report(source, f"annotations[{index}]", f"expected a JSON object, found {annotation!r}")
            continue
        model_id = annotation.get("model_id")
        if model_id is None:
            without_model += 1
            continue
        image_id = annotation.get("image_id")
        file_name = file_names.get(image_id)
        label = f"annotations[{index}] (image_id {image_id!r}, image {file_name!r})"
        if file_name is None:
            problems.report(source, label, f"image_id {image_id!r} is not in 'images'")
            continue
        if not isinstance(model_id, str):
            problems.report(source, label, f"model_id {model_id!r} is not a string")
            continue
        shape = pool.get(model_id)
        if shape is None:
            problems.report(source, label, f"model {model_id!r} not found: no {MODEL_FOLDER}/{model_id}/{MESH_NAME}")
            continue
        image = scene / folder / "image" / (file_name if Path(file_name).suffix else f"{file_name}.jpg")
        if image not in image_exists:
            image_exists[image] = image.is_file()
        if not image_exists[image]:
            problems.report(source, label, f"image not found: {image}")
            continue
        raw_bbox = annotation.get("bbox")
        bbox: tuple[int, int, int, int] | None = None
        if raw_bbox is not None:
            if not (isinstance(raw_bbox, list) and len(raw_bbox) == 4 and all(is_number(v) for v in raw_bbox)):
                problems.report(source, label, f"bbox {raw_bbox!r} is not four numbers [x, y, width, height]")
                continue
            x, y, width, height = raw_bbox
            bbox = (round(x), round(y), round(x + width), round(y + height))
        queries.append(
            QueryRecord(image=image, shape_id=model_id, category=shape.category, mask=None, split=split, bbox=bbox)
        )
    if without_model:
        logger.info("3d-future: %s: %d annotation(s) without a model_id are not queries", source, without_model)
    return queries
