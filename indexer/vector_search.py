"""Vector search over the shape vectors, behind a small interface of our own: build, search, save, load.

The shape vectors (float32, L2-normalised, one row per shape) are the one copy of the vectors in memory: exact
search scans them directly, and the approximate indexes hold only 8-bit codes of them (a quarter of the size) whose
candidates are re-scored exactly against the vectors. At a million 256-D shapes that is 1 GB of vectors plus 0.26 GB
of codes, where a FAISS flat or IVF-flat index beside the vectors would hold a second gigabyte.

- exact: every vector, every query (the default; right for pools up to about 100,000 shapes on a CPU)
- ivf: an inverted file of 8-bit codes; the number of lists follows the pool size, and the number of lists probed
  is the smallest that reaches the target recall@10 against exact search on calibration queries
- hnsw: a graph over 8-bit codes; the search breadth is tuned the same way

A GPU copy of the exact or IVF index is made when faiss-gpu is installed and a GPU is visible; nothing else in
photo2cad knows which one it talks to.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from photo2cad.errors import Photo2CadError

try:
    import faiss
except ImportError as error:  # FAISS's CPU and GPU builds are separate packages: the install picks one (extras)
    raise ImportError(
        "photo2cad needs FAISS and none is installed: pip install 'photo2cad[cpu]' (or 'photo2cad[gpu]' on an "
        "NVIDIA GPU); scripts/install.sh does this for you"
    ) from error

log = logging.getLogger(__name__)

_faiss: Any = faiss  # FAISS's type stubs lack the scalar-quantised HNSW and the search parameters' keywords

IndexKind = Literal["exact", "ivf", "hnsw"]

# Approximate search ranks REFINE_FACTOR x k candidates by their codes, then re-scores them with the exact vectors.
REFINE_FACTOR = 4
CALIBRATION_QUERIES = 1000
# Tuning aims this far above the target recall: on queries the calibration did not see the recall comes out up to
# about 0.01 lower (a million synthetic shapes: 0.960 at tuning, 0.949 on fresh queries).
TUNING_MARGIN = 0.01
# The HNSW search breadth from which an IVF index is the better choice (and the build says so).
SLOW_HNSW_EF = 1024
# Calibration queries are stored vectors plus noise of this norm: a query near, but not on, a catalogued shape
# (cosine 0.89 to it), as a photo of it is.
CALIBRATION_NOISE = 0.5


class SearchConfigError(Photo2CadError, ValueError):
    """Search parameters that cannot work for this pool (more IVF lists than shapes, ...)."""


class SearchConfig(BaseModel):
    """How the shape vectors are searched; what is left None is chosen by the pool's size and the target recall."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: IndexKind = Field("exact", description="exact, ivf or hnsw")
    ivf_lists: int | None = Field(None, ge=1, description="IVF lists; default 4 x sqrt(shapes), >= 39 shapes each")
    ivf_probe: int | None = Field(None, ge=1, description="IVF lists probed per query; default: tuned to the recall")
    hnsw_neighbours: int = Field(32, ge=4, le=256, description="HNSW links per node (M)")
    hnsw_ef_search: int | None = Field(None, ge=1, description="HNSW search breadth; default: tuned to the recall")
    target_recall: float = Field(0.95, gt=0.0, le=1.0, description="recall@10 against exact search to tune for")


def gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def ivf_lists_for(count: int) -> int:
    """4 sqrt(N) lists (FAISS's guideline for up to a million vectors), with at least 39 vectors per list for its
    k-means to mean something."""
    return max(1, min(int(round(4 * np.sqrt(count))), count // 39))


class VectorSearch:
    """Inner-product search over L2-normalised float32 vectors (scores are cosines)."""

    def __init__(
        self,
        vectors: np.ndarray,
        kind: IndexKind,
        codes: faiss.Index | None = None,
        params: dict[str, Any] | None = None,
        gpu_index: Any = None,
    ) -> None:
        self.vectors = vectors  # (N, D) float32: the only full-precision copy, often memory-mapped
        self.kind = kind
        self._codes: Any = codes  # the approximate index (8-bit codes), None for exact search
        self.params: dict[str, Any] = dict(params or {})
        self._gpu_index = gpu_index
        self._apply_params()

    @property
    def on_gpu(self) -> bool:
        return self._gpu_index is not None

    @property
    def size(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def indexed(self) -> int:
        """Vectors the approximate index holds (the size for exact search)."""
        return self.size if self._codes is None else int(self._codes.ntotal)

    @classmethod
    def build(cls, vectors: np.ndarray, config: SearchConfig | None = None, use_gpu: bool = False) -> VectorSearch:
        """The index `config` asks for over `vectors`, its open parameters tuned; `params["recall_at_10"]` holds
        the recall it reached (approximate kinds)."""
        config = config or SearchConfig()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        count, dim = vectors.shape
        if config.kind == "exact" or count == 0:
            built = cls(vectors, config.kind)
            return built.to_gpu() if use_gpu else built
        codes: Any
        params: dict[str, Any]
        if config.kind == "ivf":
            lists = config.ivf_lists or ivf_lists_for(count)
            if lists > count:
                raise SearchConfigError(f"{lists} IVF lists for {count} shapes: use at most {count} (or leave it out)")
            quantizer = faiss.IndexFlatIP(dim)
            codes = faiss.IndexIVFScalarQuantizer(
                quantizer, dim, lists, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
            codes.cp.max_points_per_centroid = 64  # k-means on 64 vectors per list: seconds at a million shapes
            codes.train(vectors)
            params = {"lists": lists, "probe": config.ivf_probe or lists}
        elif config.kind == "hnsw":
            codes = _faiss.IndexHNSWSQ(
                dim, faiss.ScalarQuantizer.QT_8bit, config.hnsw_neighbours, faiss.METRIC_INNER_PRODUCT
            )
            codes.train(vectors)
            params = {"neighbours": config.hnsw_neighbours, "ef_search": config.hnsw_ef_search or 16}
        else:
            raise SearchConfigError(f"unknown index kind {config.kind!r}: choose exact, ivf or hnsw")
        codes.add(vectors)
        built = cls(vectors, config.kind, codes, params)
        built._tune(config)
        return built.to_gpu() if use_gpu else built

    def _tune(self, config: SearchConfig) -> None:
        """The smallest probe / search breadth that reaches the target recall (unless the config fixed it)."""
        queries = calibration_queries(self.vectors)
        exact = VectorSearch(self.vectors, "exact")
        _, truth = exact.search(queries, 10)
        key, fixed = ("probe", config.ivf_probe) if self.kind == "ivf" else ("ef_search", config.hnsw_ef_search)
        ceiling = self.params["lists"] if self.kind == "ivf" else 4096
        candidates = [fixed] if fixed is not None else _doubling(1 if self.kind == "ivf" else 16, ceiling)
        recall = 0.0
        for value in candidates:
            self.params[key] = value
            self._apply_params()
            _, found = self.search(queries, 10)
            recall = recall_of(found, truth)
            if recall >= min(config.target_recall + TUNING_MARGIN, 1.0):
                break
        self.params["recall_at_10"] = round(recall, 4)
        log.info("%s index: %s, recall@10 against exact search %.3f", self.kind, self.params, recall)
        if recall < config.target_recall:
            log.warning(
                "%s index reaches recall@10 %.3f, below the target %.2f: searches will miss shapes that exact search "
                "finds; leave %s out to tune it, or choose another --index-kind",
                self.kind,
                recall,
                config.target_recall,
                key,
            )
        elif self.kind == "hnsw" and fixed is None and self.params[key] >= SLOW_HNSW_EF:
            # A breadth this large visits a sizeable share of the graph per query: measured at a million 736-D
            # vectors, 22 ms per search against IVF's 0.7 ms at the same recall (docs/indexing.md).
            log.warning(
                "hnsw index needed ef_search %d for recall@10 %.2f: searches will be slow; IVF (--index-kind ivf) "
                "reaches the same recall faster on vectors like these",
                self.params[key],
                config.target_recall,
            )

    def _apply_params(self) -> None:
        if self._codes is None:
            return
        if self.kind == "ivf":
            faiss.extract_index_ivf(self._codes).nprobe = int(self.params["probe"])
        elif self.kind == "hnsw":
            self._codes.hnsw.efSearch = int(self.params["ef_search"])

    def to_gpu(self) -> VectorSearch:
        if self.kind == "hnsw":
            log.info("FAISS has no GPU HNSW; the HNSW index stays on the CPU")
            return self
        if not gpu_available():
            log.info("faiss-gpu or a GPU is missing; the index stays on the CPU")
            return self
        resources = faiss.StandardGpuResources()
        source = self._codes if self._codes is not None else _flat(self.vectors)
        gpu_index = faiss.index_cpu_to_gpu(resources, 0, source)
        setattr(gpu_index, "referenced_resources", resources)  # noqa: B010 - keep the resources alive with the index
        log.info("FAISS index on GPU 0")
        return VectorSearch(self.vectors, self.kind, self._codes, self.params, gpu_index=gpu_index)

    def search(self, queries: np.ndarray, k: int, rows: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows), each (Q, k'), best first; k' = min(k, rows searched). `rows` = (start, end) searches
        only that range of rows (a category), exactly when it is small, else through the approximate index."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        start, end = rows if rows is not None else (0, self.size)
        k = min(k, end - start)
        if k <= 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        if self._codes is None or (rows is not None and end - start <= EXACT_RANGE_ROWS):
            if self._gpu_index is not None and rows is None:
                scores, found = self._gpu_index.search(queries, k)
                return scores, found
            scores, found = exact_search(queries, self.vectors[start:end], k)
            return scores, found + start
        return self._approximate(queries, k, rows)

    def _approximate(self, queries: np.ndarray, k: int, rows: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
        wanted = min(k * REFINE_FACTOR, self.size)
        if rows is not None:
            selector = faiss.IDSelectorRange(*rows)
            parameters: Any
            if self.kind == "ivf":
                parameters = _faiss.SearchParametersIVF(sel=selector, nprobe=int(self.params["probe"]))
            else:
                parameters = _faiss.SearchParametersHNSW(sel=selector, efSearch=int(self.params["ef_search"]))
            _, candidates = self._codes.search(queries, wanted, params=parameters)
        else:
            index = self._gpu_index if self._gpu_index is not None else self._codes
            _, candidates = index.search(queries, wanted)
        return refine(queries, self.vectors, candidates, k)

    def save(self, path: Path) -> None:
        """The approximate index (its codes and lists); exact search needs no file beyond the vectors."""
        if self._codes is not None:
            faiss.write_index(self._codes, str(path))

    @classmethod
    def load(
        cls, path: Path, vectors: np.ndarray, kind: IndexKind, params: dict[str, Any], use_gpu: bool = False
    ) -> VectorSearch:
        codes = None if kind == "exact" else _read_codes(path, kind)
        if codes is not None and kind == "ivf" and "probe" not in params:  # written before parameters were recorded
            ivf = faiss.extract_index_ivf(codes)
            params = {"lists": int(ivf.nlist), "probe": int(ivf.nprobe), **params}
        elif codes is not None and kind == "hnsw" and "ef_search" not in params:
            params = {"ef_search": int(codes.hnsw.efSearch), **params}
        loaded = cls(vectors, kind, codes, params)
        return loaded.to_gpu() if use_gpu else loaded


# A category of up to this many rows is searched exactly (a few milliseconds on a CPU); larger ones go through the
# approximate index with the category's row range as a filter.
EXACT_RANGE_ROWS = 50_000


def _read_codes(path: Path, kind: IndexKind) -> Any:
    index = faiss.read_index(str(path))
    if isinstance(index, faiss.IndexFlat):  # written before approximate indexes held codes: exact search needs none
        raise SearchConfigError(f"{path} holds a flat index, not an {kind} index")
    return index


def _flat(vectors: np.ndarray) -> faiss.Index:
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return flat


def _doubling(first: int, ceiling: int) -> list[int]:
    values = [first]
    while values[-1] < ceiling:
        values.append(min(values[-1] * 2, ceiling))
    return values


def exact_search(queries: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows of `vectors` by inner product, best first (FAISS's brute force: a SIMD scan on one thread for a
    few queries, which no other busy thread can stall, and BLAS in blocks of bounded memory for many)."""
    k = min(k, len(vectors))
    vectors = np.asarray(vectors, dtype=np.float32)  # a memory-mapped file stays mapped: no copy
    scores, rows = faiss.knn(
        np.ascontiguousarray(queries, dtype=np.float32), vectors, k, metric=faiss.METRIC_INNER_PRODUCT
    )
    return scores, rows.astype(np.int64)


def refine(queries: np.ndarray, vectors: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Re-score approximate candidates (-1 = none) exactly and keep the best k of each query."""
    scores = np.full((len(queries), k), -np.inf, np.float32)
    rows = np.full((len(queries), k), -1, np.int64)
    for i, (query, found) in enumerate(zip(queries, candidates, strict=True)):
        found = np.unique(found[found >= 0])  # sorted: the memory-mapped rows are read in order
        if not len(found):
            continue
        exact = np.asarray(vectors[found], dtype=np.float32) @ query
        order = np.lexsort((found, -exact))[:k]
        scores[i, : len(order)], rows[i, : len(order)] = exact[order], found[order]
    return scores, rows


def calibration_queries(vectors: np.ndarray, count: int = CALIBRATION_QUERIES, seed: int = 0) -> np.ndarray:
    """Queries near stored vectors: `count` of them, each a random stored vector plus noise of norm
    CALIBRATION_NOISE, normalised."""
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(vectors), size=min(count, len(vectors)), replace=False))
    noise = rng.normal(size=(len(picked), vectors.shape[1])).astype(np.float32)
    noise *= CALIBRATION_NOISE / np.linalg.norm(noise, axis=1, keepdims=True)
    queries = np.asarray(vectors[picked], dtype=np.float32) + noise
    return queries / np.linalg.norm(queries, axis=1, keepdims=True)


def recall_of(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the true top-k rows that were found (both (Q, k))."""
    hits = sum(len(set(t) & set(f)) for t, f in zip(truth.tolist(), found.tolist(), strict=True))
    return hits / truth.size if truth.size else 1.0


def recall_at_k(approximate: VectorSearch, exact: VectorSearch, queries: np.ndarray, k: int = 10) -> float:
    """Share of the exact top-k that the approximate index also returns in its top-k."""
    _, truth = exact.search(queries, k)
    _, found = approximate.search(queries, k)
    return recall_of(found, truth)
