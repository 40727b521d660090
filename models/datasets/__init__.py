"""Dataset readers: each returns a RetrievalDataset (shape pool + photo queries with their exact shape).

``read_dataset(layout, root, **kwargs)`` picks the reader by layout name; see each module for its file layout.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from photo2cad.models.datasets.cars import read_compcars_3d, read_stanford_cars_3d
from photo2cad.models.datasets.folder import read_folder, read_ikea_dev
from photo2cad.models.datasets.future3d import read_3d_future
from photo2cad.models.datasets.pix3d import read_pix3d
from photo2cad.models.datasets.records import SPLITS, DatasetError, QueryRecord, RetrievalDataset, Split

READERS: dict[str, Callable[..., RetrievalDataset]] = {
    "pix3d": read_pix3d,
    "3d-future": read_3d_future,
    "stanford-cars": read_stanford_cars_3d,
    "compcars": read_compcars_3d,
    "folder": read_folder,
    "ikea-dev": read_ikea_dev,
    "ikea-dev-unseen": partial(read_ikea_dev, unseen_shapes=True),
}
LAYOUTS: tuple[str, ...] = tuple(READERS)


def read_dataset(layout: str, root: Path, **kwargs: Any) -> RetrievalDataset:
    """Read ``root`` with the reader of ``layout``; keyword arguments go to that reader (e.g. ``on_missing="skip"``)."""
    reader = READERS.get(layout)
    if reader is None:
        raise DatasetError(f"unknown dataset layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    return reader(Path(root), **kwargs)


__all__ = [
    "LAYOUTS",
    "SPLITS",
    "DatasetError",
    "QueryRecord",
    "RetrievalDataset",
    "Split",
    "read_3d_future",
    "read_compcars_3d",
    "read_dataset",
    "read_folder",
    "read_ikea_dev",
    "read_pix3d",
    "read_stanford_cars_3d",
]
