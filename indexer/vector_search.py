"""Vector search over the shape vectors, behind a small interface of our own: build, search, save, load.

Exact inner product is the default. IVF and HNSW are choices of construction for large pools, and a GPU copy is made
when faiss-gpu is installed and a GPU is visible; nothing else in photo2cad knows which one it talks to.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

log = logging.getLogger(__name__)

IndexKind = Literal["exact", "ivf", "hnsw"]


def gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


class VectorSearch:
    """Inner-product search over L2-normalised float32 vectors (scores are cosines)."""

    def __init__(self, index: faiss.Index, kind: IndexKind, search_index: faiss.Index | None = None) -> None:
        self._index = index  # always the CPU index: what is saved
        self._search_index = search_index if search_index is not None else index  # a GPU copy when there is one
        self.kind = kind

    @property
    def on_gpu(self) -> bool:
        return self._search_index is not self._index

    @property
    def size(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        kind: IndexKind = "exact",
        ivf_lists: int | None = None,
        ivf_probe: int = 8,
        hnsw_neighbours: int = 32,
        use_gpu: bool = False,
    ) -> VectorSearch:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        count, dim = vectors.shape
        index: faiss.Index
        if kind == "exact":
            index = faiss.IndexFlatIP(dim)
        elif kind == "ivf":
            # sqrt(N) lists is FAISS's usual starting point; at least 39 vectors per list for k-means to mean much.
            lists = ivf_lists or max(1, min(int(np.sqrt(count)), count // 39))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
            index.train(vectors)
            index.nprobe = min(ivf_probe, lists)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, hnsw_neighbours, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = max(64, hnsw_neighbours * 2)
        else:
            raise ValueError(f"unknown index kind {kind!r}: choose exact, ivf or hnsw")
        index.add(vectors)
        built = cls(index, kind)
        return built.to_gpu() if use_gpu else built

    def to_gpu(self) -> VectorSearch:
        if self.kind == "hnsw":
            log.info("FAISS has no GPU HNSW; the HNSW index stays on the CPU")
            return self
        if not gpu_available():
            log.info("faiss-gpu or a GPU is missing; the index stays on the CPU")
            return self
        resources = faiss.StandardGpuResources()
        gpu_index = faiss.index_cpu_to_gpu(resources, 0, self._index)
        setattr(gpu_index, "referenced_resources", resources)  # noqa: B010 - keep the resources alive with the index
        log.info("FAISS index on GPU 0")
        return VectorSearch(self._index, self.kind, search_index=gpu_index)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows), each (Q, k'), k' = min(k, size), best first."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, self.size)
        if k == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        scores, rows = self._search_index.search(queries, k)
        return scores, rows

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, kind: IndexKind, use_gpu: bool = False) -> VectorSearch:
        loaded = cls(faiss.read_index(str(path)), kind)
        return loaded.to_gpu() if use_gpu else loaded


def recall_at_k(approximate: VectorSearch, exact: VectorSearch, queries: np.ndarray, k: int = 10) -> float:
    """Share of the exact top-k that the approximate index also returns in its top-k."""
    _, truth = exact.search(queries, k)
    _, found = approximate.search(queries, k)
    hits = sum(len(set(t) & set(f)) for t, f in zip(truth.tolist(), found.tolist(), strict=True))
    return hits / truth.size if truth.size else 1.0
