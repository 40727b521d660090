"""Pix3D (Sun et al., CVPR 2018) as released at http://pix3d.csail.mit.edu.

Layout (the public release, verified against its pix3d.json readers)::

    root/
      pix3d.json             list of records: img, mask, model, category, bbox [x0, y0, x1, y1], img_size,
                             rot_mat, trans_mat, focal_length, ...; paths relative to root
      img/<category>/<n>.<jpg|png>
      mask/<category>/<n>.png
      model/<category>/<NAME>/model.obj   (+ .mtl, textures, voxel.mat, 3d_keypoints.txt)

shape_id is the model's folder below ``model/`` (``model/chair/IKEA_POANG_1/model.obj`` -> ``chair/IKEA_POANG_1``);
the pool is every model folder under ``model/``, photographed or not.

Splits: with ``split_file``, the images it lists are the test split. Accepted forms: Mesh R-CNN's S1/S2 files
(``pix3d_s1_test.json``, COCO style: ``{"images": [{"file_name": "img/bed/0001.png", ...}], ...}``) or a plain JSON
list of image paths. The other images are cut into train and val by ``val_fraction``. Without a split file, all images
are cut by a seeded shuffle into test (``test_fraction``), val (``val_fraction``) and train (the rest). Either way the
cut is by photo, deterministic for a given pix3d.json and seed.

Evaluation note for callers: Pix3D results are reported with each photo ranked against the shapes of its ground-truth
category only (``[s for s in dataset.shapes if s.category == query.category]``), not the whole pool.
"""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath
from typing import Any

from photo2cad.models.datasets._common import (
    OnMissing,
    RecordProblems,
    is_number,
    is_text,
    load_json,
    scan_pool_logged,
    split_by_photo,
)
from photo2cad.models.datasets.records import DatasetError, QueryRecord, RetrievalDataset, Split
from photo2cad.shapes.pool import ShapeRecord, shape_id_for_mesh

logger = logging.getLogger(__name__)

_MODEL_FOLDER = "model"


def read_pix3d(
    root: Path,
    split_file: Path | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    test_fraction: float = 0.2,
    on_missing: OnMissing = "error",
) -> RetrievalDataset:
    root = Path(root)
    problems = RecordProblems("pix3d", on_missing, logger)
    source = root / "pix3d.json"
    records = load_json(source, "Pix3D annotation file")
    if not isinstance(records, list):
        raise DatasetError(f"{source}: expected a JSON list of records, found {type(records).__name__}")
    listing = scan_pool_logged(root / _MODEL_FOLDER, logger)
    pool = {shape.shape_id: shape for shape in listing.shapes}

    # Splits are drawn over every image named in pix3d.json, so skipping a broken record moves no other photo.
    image_keys = [
        _normalise(record["img"]) for record in records if isinstance(record, dict) and is_text(record.get("img"))
    ]
    if split_file is not None:
        test_images = _read_test_list(Path(split_file), set(image_keys), problems)
        splits: dict[str, Split] = {key: "test" for key in test_images}
        splits.update(
            split_by_photo((key for key in image_keys if key not in test_images), {"val": val_fraction}, seed)
        )
    else:
        splits = split_by_photo(image_keys, {"test": test_fraction, "val": val_fraction}, seed)

    queries: list[QueryRecord] = []
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        query = _read_record(root, source, index, record, pool, splits, seen, problems)
        if query is not None:
            queries.append(query)
    problems.log()
    return RetrievalDataset(
        name="pix3d",
        shapes=listing.shapes,
        queries=tuple(queries),
        pool_root=root / _MODEL_FOLDER,
        rank_within_category=True,
    )


def _read_record(
    root: Path,
    source: Path,
    index: int,
    record: Any,
    pool: dict[str, ShapeRecord],
    splits: dict[str, Split],
    seen: dict[str, int],
    problems: RecordProblems,
) -> QueryRecord | None:
    if not isinstance(record, dict):
        problems.report(source, f"record {index}", f"expected a JSON object, found {type(record).__name__}")
        return None
    label = f"record {index} (img {record.get('img')!r})"
    for name in ("img", "model", "category"):
        if not is_text(record.get(name)):
            problems.report(source, label, f"field {name!r} missing or not a non-empty string")
            return None
    image_key = _normalise(record["img"])
    if image_key in seen:
        problems.report(source, label, f"image listed twice (first in record {seen[image_key]})")
        return None
    seen[image_key] = index

    model_path = PurePosixPath(_normalise(record["model"]))
    if len(model_path.parts) < 2 or model_path.parts[0] != _MODEL_FOLDER:
        problems.report(source, label, f"model path {record['model']!r} is not below {_MODEL_FOLDER}/")
        return None
    if not problems.file_missing(root / model_path, source, label, "model"):
        return None
    shape_id = shape_id_for_mesh(model_path.relative_to(_MODEL_FOLDER).as_posix())
    shape = pool.get(shape_id)
    if shape is None:
        problems.report(source, label, f"model {model_path} is not listed by the pool scan of {root / _MODEL_FOLDER}")
        return None
    if shape.category is not None and record["category"] != shape.category:
        problems.report(
            source, label, f"category {record['category']!r} differs from the model folder's {shape.category!r}"
        )
        return None

    image = root / image_key
    if not problems.file_missing(image, source, label, "image"):
        return None
    mask: Path | None = None
    if is_text(record.get("mask")):
        mask = root / _normalise(record["mask"])
        if not problems.file_missing(mask, source, label, "mask"):
            return None

    raw_bbox = record.get("bbox")
    bbox: tuple[int, int, int, int] | None = None
    if raw_bbox is not None:
        if not (isinstance(raw_bbox, list) and len(raw_bbox) == 4 and all(is_number(v) for v in raw_bbox)):
            problems.report(source, label, f"bbox {raw_bbox!r} is not four numbers [x0, y0, x1, y1]")
            return None
        x0, y0, x1, y1 = (round(v) for v in raw_bbox)
        bbox = (x0, y0, x1, y1)  # Pix3D's corners, passed through unchanged
    return QueryRecord(
        image=image, shape_id=shape_id, category=record["category"], mask=mask, split=splits[image_key], bbox=bbox
    )


def _read_test_list(split_file: Path, known_images: set[str], problems: RecordProblems) -> set[str]:
    content = load_json(split_file, "Pix3D split file")
    entries = content.get("images") if isinstance(content, dict) else content
    if not isinstance(entries, list):
        raise DatasetError(
            f"{split_file}: expected a COCO-style object with an 'images' list or a JSON list of image paths"
        )
    test_images: set[str] = set()
    for index, entry in enumerate(entries):
        name = entry.get("file_name") if isinstance(entry, dict) else entry
        if not is_text(name):
            problems.report(
                split_file, f"images[{index}]", f"expected an image path or {{'file_name': ...}}, found {entry!r}"
            )
            continue
        key = _normalise(name)
        if key not in known_images:
            problems.report(split_file, f"images[{index}] ({name!r})", "image not in pix3d.json")
            continue
        test_images.add(key)
    return test_images


def _normalise(path: str) -> str:
    return PurePosixPath(path.strip().removeprefix("./")).as_posix()
