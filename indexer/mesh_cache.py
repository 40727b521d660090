"""Meshes ready to draw, kept by file checksum: a rebuild (other weights, other views) skips parsing and simplifying.

A 100,000-face OBJ takes about 0.13 s to parse and 0.05 s to simplify on a CPU core; its simplified, normalised
mesh reads back in a millisecond. Entries are keyed by the file's sha256 and how it was prepared (face budget and
error bound), live in the index directory (`.mesh-cache/`), and are written whole or not at all. A build drops the
entries of files no longer in its pool.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import trimesh

from photo2cad.files import atomic_path

log = logging.getLogger(__name__)


class MeshCache:
    def __init__(self, directory: Path, variant: str) -> None:
        self.directory = directory
        self.variant = variant  # how meshes were prepared: a cache of another preparation is another file

    def _path(self, checksum: str) -> Path:
        return self.directory / checksum[:2] / f"{checksum}-{self.variant}.npz"

    def get(self, checksum: str) -> trimesh.Trimesh | None:
        path = self._path(checksum)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return trimesh.Trimesh(vertices=data["vertices"], faces=data["faces"], process=False)
        except (OSError, ValueError, KeyError) as err:  # a damaged entry is only a miss
            log.warning("ignoring the damaged mesh cache entry %s: %s", path, err)
            return None

    def put(self, checksum: str, mesh: trimesh.Trimesh) -> None:
        faces = np.asarray(mesh.faces)
        index_type = np.uint16 if len(mesh.vertices) <= np.iinfo(np.uint16).max else np.uint32
        with atomic_path(self._path(checksum)) as partial:
            np.savez(partial, vertices=np.asarray(mesh.vertices, np.float32), faces=faces.astype(index_type))

    def keep_only(self, checksums: Iterable[str]) -> int:
        """Delete the entries of every other file; returns how many were deleted."""
        wanted = set(checksums)
        removed = 0
        for path in self.directory.glob("*/*.npz"):
            if path.name.split("-", 1)[0] not in wanted:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
