"""Renders of a dataset's shapes, made once and kept on disk: one file per shape, keyed by the file's checksum.

Training reads every shape's renders many times and across runs; rendering them again each time would dominate a
CPU epoch. What a file holds (grey views, normal maps, colour renders...) is the caller's: this module only knows
where it lives, that it appears whole or not at all, and which shapes could not be rendered.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from photo2cad.files import atomic_path
from photo2cad.shapes.meshes import MeshLoadError, file_checksum
from photo2cad.shapes.pool import ShapeRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedRenders:
    """Row i of every array belongs to shape_ids[i]; shapes that could not be rendered are in `failed`."""

    shape_ids: tuple[str, ...]
    arrays: dict[str, np.ndarray]  # name -> (N, ...) stacked over the shapes
    failed: tuple[tuple[str, str], ...]  # (shape_id, reason)


def cached_renders(
    shapes: Sequence[ShapeRecord],
    directory: Path,
    render_shape: Callable[[ShapeRecord], Mapping[str, np.ndarray]],
    variant: str = "",
    description: str = "rendering",
    progress: bool = True,
) -> CachedRenders:
    """Each shape's arrays from `directory` when an earlier run made them, else `render_shape(shape)`, saved there.

    `variant` tells apart files of one shape that hold different things in the same directory. A shape whose file
    cannot become a mesh (`render_shape` raises MeshLoadError) is left out, listed in `failed` and logged.
    """
    ids: list[str] = []
    columns: dict[str, list[np.ndarray]] = {}
    failed: list[tuple[str, str]] = []
    for shape in tqdm(shapes, desc=description, unit="shape", disable=not progress):
        key = f"{shape.shape_id}|{file_checksum(shape.path)}" + (f"|{variant}" if variant else "")
        path = directory / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.npz"
        if not path.is_file():
            try:
                arrays = render_shape(shape)
            except MeshLoadError as err:
                failed.append((shape.shape_id, str(err)))
                continue
            payload: dict[str, Any] = dict(arrays)  # numpy's stubs type **kwds against its own keyword options
            with atomic_path(path) as partial:
                np.savez_compressed(partial, **payload)
        with np.load(path) as data:
            for name in data.files:
                columns.setdefault(name, []).append(data[name])
        ids.append(shape.shape_id)
    if failed:
        log.warning(
            "%s: %d shapes could not be rendered and are left out, e.g. %s", description, len(failed), failed[:3]
        )
    return CachedRenders(tuple(ids), {name: np.stack(column) for name, column in columns.items()}, tuple(failed))
