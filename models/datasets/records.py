"""The one structure every dataset reader returns: a shape pool and photo queries labelled with their exact shape."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from photo2cad.errors import Photo2CadError
from photo2cad.shapes.pool import ShapeRecord

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


class DatasetError(Photo2CadError, ValueError):
    """A dataset cannot be read as asked; the message names the file and the record (line, index or image)."""


@dataclass(frozen=True)
class QueryRecord:
    """One photo of one object.

    ``bbox`` is ``(x0, y0, x1, y1)`` in pixels of ``image`` (PIL's crop order); ``mask`` is a binary mask image of the
    object, the same size as ``image``.
    """

    image: Path
    shape_id: str
    category: str | None
    mask: Path | None
    split: Split
    bbox: tuple[int, int, int, int] | None


@dataclass(frozen=True)
class RetrievalDataset:
    """Shapes sorted by shape_id; every query names one of them (checked on construction)."""

    name: str
    shapes: tuple[ShapeRecord, ...]
    queries: tuple[QueryRecord, ...]
    pool_root: Path | None = None  # the folder holding the shapes' files; None: their common parent
    # How the dataset's results are reported: Pix3D ranks each photo among the shapes of its own category only.
    rank_within_category: bool = False
    parts: tuple[str, ...] = ()  # the datasets merged into this one (merge.py), each shape_id led by its part's name
    _by_id: dict[str, ShapeRecord] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        by_id: dict[str, ShapeRecord] = {}
        for shape in self.shapes:
            if shape.shape_id in by_id:
                raise DatasetError(f"{self.name}: shape_id {shape.shape_id!r} appears twice in the pool")
            by_id[shape.shape_id] = shape
        for index, query in enumerate(self.queries):
            if query.shape_id not in by_id:
                raise DatasetError(f"{self.name}: query {index} ({query.image}) names unknown shape {query.shape_id!r}")
            if query.split not in SPLITS:
                raise DatasetError(f"{self.name}: query {index} ({query.image}) has unknown split {query.split!r}")
        object.__setattr__(self, "_by_id", by_id)

    def categories(self) -> tuple[str, ...]:
        """Sorted categories of the shapes and queries (None left out)."""
        found = {shape.category for shape in self.shapes} | {query.category for query in self.queries}
        return tuple(sorted(category for category in found if category is not None))

    def split(self, name: str) -> tuple[QueryRecord, ...]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        return tuple(query for query in self.queries if query.split == name)

    def source_of(self, shape_id: str) -> str:
        """Which dataset a shape comes from: its part's name in a merge, else this dataset's name."""
        return shape_id.split("/", 1)[0] if self.parts else self.name

    def pool_folder(self) -> Path:
        """Where the shapes' files live: index source paths are relative to it."""
        if self.pool_root is not None:
            return self.pool_root
        if not self.shapes:
            raise DatasetError(f"{self.name}: no shapes, so no pool folder")
        return Path(os.path.commonpath([shape.path.parent for shape in self.shapes]))

    def shape(self, shape_id: str) -> ShapeRecord:
        try:
            return self._by_id[shape_id]
        except KeyError:
            raise KeyError(f"{self.name}: no shape {shape_id!r} in the pool") from None
