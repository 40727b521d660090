"""Layouts a user makes by hand: a pool folder and a CSV of labelled photos.

``read_folder(root)`` reads::

    root/
      pool/                  meshes, as shapes.pool.scan_pool lists them: <shape_id>.<obj|glb|gltf|ply|stl|off>
                             or <shape_id>/model.<ext>
      categories.csv         optional: shape_id,category (else a shape's category is its first folder, if any)
      queries.csv            image,shape_id,split[,mask][,category]; split is train, val or test;
                             paths relative to root

A query's category, when its column is empty or absent, is its shape's category; a query whose category contradicts
its shape's is a broken record (the ranking within a category would silently go wrong otherwise). Ranking within a
category needs the shapes' categories: give them by sub-folder or categories.csv, not only in queries.csv.

``read_ikea_dev(root)`` reads the team's ikea-pix3d-dev folder: ``pool/`` in Pix3D's folder layout and ``photos.csv``
(image,shape_id,category) without a split column; the photos are split by photo into train and val.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from photo2cad.models.datasets._common import (
    OnMissing,
    RecordProblems,
    parse_split,
    read_csv,
    scan_pool_logged,
    split_whole_groups,
    split_within_groups,
)
from photo2cad.models.datasets.records import DatasetError, QueryRecord, RetrievalDataset, Split
from photo2cad.shapes.pool import ShapeRecord

logger = logging.getLogger(__name__)


def read_folder(root: Path, on_missing: OnMissing = "error") -> RetrievalDataset:
    root = Path(root)
    problems = RecordProblems("folder", on_missing, logger)
    categories_csv = root / "categories.csv"
    listing = scan_pool_logged(root / "pool", logger, categories_csv if categories_csv.is_file() else None)
    pool = {shape.shape_id: shape for shape in listing.shapes}
    source = root / "queries.csv"

    queries: list[QueryRecord] = []
    seen: dict[str, int] = {}
    for line, values in read_csv(source, ("image", "shape_id", "split"), ("mask", "category"), problems, "queries.csv"):
        photo = _check_photo(root, source, line, values, pool, seen, problems)
        if photo is None:
            continue
        split = parse_split(values["split"])
        if split is None:
            problems.report(source, photo.record, f"unknown split {values['split']!r} (expected train, val or test)")
            continue
        queries.append(photo.query(split))
    problems.log()
    return RetrievalDataset(name="folder", shapes=listing.shapes, queries=tuple(queries), pool_root=root / "pool")


def read_ikea_dev(
    root: Path,
    val_fraction: float = 0.3,
    seed: int = 0,
    on_missing: OnMissing = "error",
    unseen_shapes: bool = False,
    fold: int = 0,
) -> RetrievalDataset:
    """Split by photo into train/val, stratified by shape: a shape with two or more photos has photos in both.

    With `unseen_shapes`, the split is by photographed shape instead: no val photo shows a shape that any train photo
    shows, the setting of a catalogue whose models never had photos in training. `fold` picks which block of shapes
    is held out (folds hold out disjoint shapes; 0 is the `ikea-dev-unseen` layout's).
    """
    if fold and not unseen_shapes:
        raise DatasetError("folds hold out whole shapes: a fold needs unseen_shapes")
    root = Path(root)
    problems = RecordProblems("ikea-dev", on_missing, logger)
    listing = scan_pool_logged(root / "pool", logger)
    pool = {shape.shape_id: shape for shape in listing.shapes}
    source = root / "photos.csv"

    photos: list[_Photo] = []
    seen: dict[str, int] = {}
    for line, values in read_csv(source, ("image", "shape_id"), ("category",), problems, "photos.csv"):
        photo = _check_photo(root, source, line, values, pool, seen, problems)
        if photo is not None:
            photos.append(photo)
    problems.log()

    by_shape: dict[str, list[str]] = {}
    for photo in photos:
        by_shape.setdefault(photo.shape_id, []).append(photo.key)
    if unseen_shapes:
        splits = split_whole_groups(by_shape, val_fraction, seed, fold)
    else:
        splits = split_within_groups(by_shape, val_fraction, seed)
    queries = tuple(photo.query(splits[photo.key]) for photo in photos)
    name = "ikea-dev-unseen" if unseen_shapes else "ikea-dev"
    return RetrievalDataset(name=name, shapes=listing.shapes, queries=queries, pool_root=root / "pool")


@dataclass(frozen=True)
class _Photo:
    key: str  # the image path as written in the CSV: unique per photo, stable across machines
    record: str
    image: Path
    shape_id: str
    category: str | None
    mask: Path | None

    def query(self, split: Split) -> QueryRecord:
        return QueryRecord(
            image=self.image, shape_id=self.shape_id, category=self.category, mask=self.mask, split=split, bbox=None
        )


def _check_photo(
    root: Path,
    source: Path,
    line: int,
    values: dict[str, str],
    pool: dict[str, ShapeRecord],
    seen: dict[str, int],
    problems: RecordProblems,
) -> _Photo | None:
    """The row as a photo, or None after reporting what is wrong with it."""
    image_name = values["image"]
    record = f"line {line} (image {image_name!r})"
    shape_id = values["shape_id"].strip("/")
    if not image_name or not shape_id:
        problems.report(source, record, "empty image or shape_id")
        return None
    if image_name in seen:
        problems.report(source, record, f"image listed twice (first on line {seen[image_name]})")
        return None
    seen[image_name] = line
    shape = pool.get(shape_id)
    if shape is None:
        problems.report(
            source, record, f"shape {shape_id!r} is not in the pool ({len(pool)} shapes in {root / 'pool'})"
        )
        return None
    image = root / image_name
    if not problems.file_missing(image, source, record, "image"):
        return None
    mask: Path | None = None
    if values.get("mask"):
        mask = root / values["mask"]
        if not problems.file_missing(mask, source, record, "mask"):
            return None
    category = values.get("category") or shape.category
    if shape.category is not None and category != shape.category:
        problems.report(
            source, record, f"category {category!r} differs from the pool's {shape.category!r} for shape {shape_id!r}"
        )
        return None
    return _Photo(key=image_name, record=record, image=image, shape_id=shape_id, category=category, mask=mask)
