"""One published version of an index, opened for search: the middle of the three layers.

served index (photo2cad.service)  follows the index directory's `current` version and swaps in new ones
index version (this module)       one version directory: manifest, shape vectors, view embeddings, thumbnails
vector search (vector_search.py)  the FAISS index over the shape vectors
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
    vectors: np.ndarray  # (N, D) float32
    view_embeddings: np.ndarray  # (N, V, D) float16, memory-mapped
    vector_search: VectorSearch
    rows_by_category: dict[str, np.ndarray]
    row_by_id: dict[str, int] = field(repr=False)

    @property
    def name(self) -> str:
        return self.manifest.version

    @property
    def size(self) -> int:
        return len(self.manifest.shapes)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted(self.rows_by_category))

    @functools.cached_property
    def pool_root(self) -> Path:
        """The pool folder, resolved: the boundary no mesh path of this version may leave."""
        return Path(self.manifest.pool_root).resolve()

    def find_entry(self, shape_id: str) -> ShapeEntry | None:
        row = self.row_by_id.get(shape_id)
        return None if row is None else self.manifest.shapes[row]

    def search(self, queries: np.ndarray, k: int, category: str | None = None) -> list[list[Hit]]:
        """Top-k rows per query; with a category, only shapes of that category are ranked (exactly)."""
        if category is None:
            scores, rows = self.vector_search.search(queries, k)
            return [
                [Hit(int(r), float(s)) for r, s in zip(rr, ss, strict=True) if r >= 0]
                for rr, ss in zip(rows, scores, strict=True)
            ]
        candidates = self.rows_by_category.get(category, np.zeros(0, np.int64))
        similarity = queries.astype(np.float32) @ self.vectors[candidates].T
        order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        return [
            [Hit(int(candidates[j]), float(sim[j])) for j in top] for sim, top in zip(similarity, order, strict=True)
        ]

    def view_embeddings_of(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), V, D) float32 for the given rows; the file stays memory-mapped."""
        return np.asarray(self.view_embeddings[rows], dtype=np.float32)


def open_index(path: Path, use_gpu: bool = False) -> IndexVersion:
    """`path` is an index directory (its `current` version is opened) or one version directory."""
    directory = path if (path / MANIFEST_NAME).is_file() else layout.current_version(path)
    manifest = Manifest.read(directory)
    vectors = np.load(directory / layout.VECTORS)
    view_embeddings = np.load(directory / layout.VIEW_EMBEDDINGS, mmap_mode="r")
    vector_search = VectorSearch.load(directory / layout.FAISS_FILE, manifest.index_kind, use_gpu=use_gpu)
    by_category: dict[str, list[int]] = {}
    for row, entry in enumerate(manifest.shapes):
        if entry.category is not None:
            by_category.setdefault(entry.category, []).append(row)
    return IndexVersion(
        directory=directory,
        manifest=manifest,
        vectors=vectors,
        view_embeddings=view_embeddings,
        vector_search=vector_search,
        rows_by_category={c: np.array(rows, dtype=np.int64) for c, rows in by_category.items()},
        row_by_id={entry.shape_id: row for row, entry in enumerate(manifest.shapes)},
    )
