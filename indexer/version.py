"""One published version of an index, opened for search: the middle of the three layers.

served index (photo2cad.service)  follows the index directory's `current` version and swaps in new ones
index version (this module)       one version directory: manifest, shape vectors, view embeddings, thumbnails
vector search (vector_search.py)  exact search over the vectors, or an approximate index of their codes

Opening a version reads its manifest and shapes table and memory-maps its vectors and view embeddings: at a million
shapes that takes a fraction of a second, and the vectors stay one copy, shared with the page cache. While a version
is open it holds a shared lock on its directory, so that pruning (layout.prune_versions) leaves it alone.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from photo2cad.indexer import layout
from photo2cad.indexer.manifest import MANIFEST_NAME, Manifest, ShapeEntry
from photo2cad.indexer.vector_search import VectorSearch


@dataclass(frozen=True)
class Hit:
    row: int
    score: float


@dataclass(frozen=True)
class IndexVersion:
    directory: Path
    manifest: Manifest
    vectors: np.ndarray  # (N, D) float32, memory-mapped
    view_embeddings: np.ndarray  # (N, V, D) float16, memory-mapped
    vector_search: VectorSearch
    lease: layout.VersionLease = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.manifest.version

    @property
    def size(self) -> int:
        return len(self.manifest.shapes)

    @property
    def rows_by_category(self) -> dict[str, np.ndarray]:
        return self.manifest.shapes.rows_by_category

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted(self.rows_by_category))

    @functools.cached_property
    def pool_root(self) -> Path:
        """The pool folder, resolved: the boundary no mesh path of this version may leave."""
        return Path(self.manifest.pool_root).resolve()

    def find_entry(self, shape_id: str) -> ShapeEntry | None:
        row = self.manifest.shapes.row_of(shape_id)
        return None if row is None else self.manifest.shapes[row]

    def search(self, queries: np.ndarray, k: int, category: str | None = None) -> list[list[Hit]]:
        """Top-k rows per query; with a category, only shapes of that category are ranked."""
        queries = np.asarray(queries, dtype=np.float32)
        if category is None:
            scores, rows = self.vector_search.search(queries, k)
        else:
            candidates = self.rows_by_category.get(category, np.zeros(0, np.int64))
            if len(candidates) and candidates[-1] - candidates[0] + 1 == len(candidates):  # one range of rows
                scores, rows = self.vector_search.search(queries, k, rows=(int(candidates[0]), int(candidates[-1]) + 1))
            else:  # versions written before rows were grouped by category
                similarity = queries @ np.asarray(self.vectors[candidates], dtype=np.float32).T
                order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
                rows, scores = candidates[order], np.take_along_axis(similarity, order, axis=1)
        return [
            [Hit(int(r), float(s)) for r, s in zip(rr, ss, strict=True) if r >= 0]
            for rr, ss in zip(rows, scores, strict=True)
        ]

    def view_embeddings_of(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), V, D) float32 for the given rows; the file stays memory-mapped."""
        return np.asarray(self.view_embeddings[rows], dtype=np.float32)

    def vectors_of(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), D') float32 shape vectors of the given rows; the file stays memory-mapped."""
        return np.asarray(self.vectors[rows], dtype=np.float32)


def version_directory(path: Path) -> Path:
    """`path` itself when it is a version directory, else the `current` version of the index directory `path`."""
    return path if (path / MANIFEST_NAME).is_file() else layout.current_version(path)


def open_index(path: Path, use_gpu: bool = False) -> IndexVersion:
    """`path` is an index directory (its `current` version is opened) or one version directory."""
    directory = version_directory(path)
    lease = layout.VersionLease(directory)
    manifest = Manifest.read(directory)
    vectors = np.load(directory / layout.VECTORS, mmap_mode="r")
    view_embeddings = np.load(directory / layout.VIEW_EMBEDDINGS, mmap_mode="r")
    vector_search = VectorSearch.load(
        directory / layout.FAISS_FILE, vectors, manifest.index_kind, manifest.index_params, use_gpu=use_gpu
    )
    return IndexVersion(directory, manifest, vectors, view_embeddings, vector_search, lease)
