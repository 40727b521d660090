"""Reading a published index version and searching it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photo2cad.indexer import layout
from photo2cad.indexer.manifest import MANIFEST_NAME, Manifest
from photo2cad.indexer.vector_search import VectorIndex


@dataclass(frozen=True)
class Hit:
    row: int
    score: float


@dataclass
class OpenIndex:
    directory: Path
    manifest: Manifest
    vectors: np.ndarray  # (N, D) float32
    view_embeddings: np.ndarray  # (N, V, D) float16, memory-mapped
    index: VectorIndex
    rows_by_category: dict[str, np.ndarray]

    @property
    def size(self) -> int:
        return len(self.manifest.shapes)

    def search(self, queries: np.ndarray, k: int, category: str | None = None) -> list[list[Hit]]:
        """Top-k rows per query; with a category, only shapes of that category are ranked (exactly)."""
        if category is None:
            scores, rows = self.index.search(queries, k)
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


def open_index(path: Path, use_gpu: bool = False) -> OpenIndex:
    """`path` is an index root (follows `current`) or one version directory."""
    directory = path if (path / MANIFEST_NAME).is_file() else layout.current_version(path)
    manifest = Manifest.read(directory)
    vectors = np.load(directory / layout.VECTORS)
    view_embeddings = np.load(directory / layout.VIEW_EMBEDDINGS, mmap_mode="r")
    index = VectorIndex.load(directory / layout.FAISS_FILE, manifest.index_kind, use_gpu=use_gpu)
    by_category: dict[str, list[int]] = {}
    for row, entry in enumerate(manifest.shapes):
        if entry.category is not None:
            by_category.setdefault(entry.category, []).append(row)
    rows_by_category = {c: np.array(rows, dtype=np.int64) for c, rows in by_category.items()}
    return OpenIndex(directory, manifest, vectors, view_embeddings, index, rows_by_category)
