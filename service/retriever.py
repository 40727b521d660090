"""The retrieval pipeline: uploaded bytes -> decoded, checked photo -> batched encoder -> search -> re-rank.

`Retriever.retrieve` owns the whole way for one photo, so that an HTTP route (or any other caller) only parses its
input and formats the answer. The steps are plain functions, each testable alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import numpy as np

from photo2cad.indexer import IndexVersion
from photo2cad.indexer.manifest import ShapeEntry
from photo2cad.models.preprocess import mask_to_tensor, photo_to_tensor
from photo2cad.service.batcher import BatcherStopped, MicroBatcher
from photo2cad.service.encoder import PhotoInput, QueryEncoder
from photo2cad.service.errors import BadImage, NotReady, UnknownCategory
from photo2cad.service.images import ImageLimits, check_mask_fits, decode_image
from photo2cad.service.metrics import ServiceMetrics
from photo2cad.service.served_index import ServedIndex

# (query (D,), candidates' view embeddings (N, V, D)) -> (N,) scores
Reranker = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PreparedQuery:
    encoder_input: PhotoInput
    decode_s: float
    preprocess_s: float


@dataclass(frozen=True)
class RankedRow:
    row: int
    score: float
    search_score: float


@dataclass(frozen=True)
class Ranking:
    rows: list[RankedRow]
    search_s: float
    rerank_s: float


@dataclass(frozen=True)
class RetrievedShape:
    entry: ShapeEntry
    score: float  # what the ranking used (the re-ranking score with rerank)
    search_score: float  # cosine of photo and shape vector


@dataclass(frozen=True)
class Retrieval:
    index_version: str
    shapes: list[RetrievedShape]  # best first
    reranked: bool
    batch_size: int  # photos embedded together with this one
    seconds: dict[str, float]  # per stage (decode, preprocess, queue, encode, search, rerank) and total


def prepare_query(photo: bytes, mask: bytes | None, limits: ImageLimits, image_size: int) -> PreparedQuery:
    """Decode and check the photo (and mask), then letterbox them exactly as training did."""
    started = time.perf_counter()
    # 2x the input side keeps the JPEG draft decoder's downscaling well above what letterboxing throws away.
    decoded_photo = decode_image(photo, "photo", limits, draft_side=2 * image_size)
    decoded_mask = None
    if mask is not None:
        decoded_mask = decode_image(mask, "mask", limits)
        check_mask_fits(decoded_photo, decoded_mask)
    decoded = time.perf_counter()
    try:
        photo_tensor = photo_to_tensor(decoded_photo.image, image_size)
        mask_tensor = mask_to_tensor(decoded_mask.image, image_size) if decoded_mask is not None else None
    except (ValueError, OSError) as err:  # a pixel mode Pillow decodes but cannot convert
        raise BadImage(f"the photo or mask cannot be converted to RGB / grey: {err}") from err
    return PreparedQuery(PhotoInput(photo_tensor, mask_tensor), decoded - started, time.perf_counter() - decoded)


def check_category(index: IndexVersion, category: str | None) -> None:
    if category is not None and category not in index.rows_by_category:
        known = ", ".join(index.categories) or "none (this index has no categories)"
        raise UnknownCategory(f"unknown category {category!r}; the index knows: {known}")


def rank_shapes(
    index: IndexVersion,
    query: np.ndarray,
    top_k: int,
    category: str | None = None,
    reranker: Reranker | None = None,
    rerank_factor: int = 5,
) -> Ranking:
    """The best `top_k` rows for one (D,) query; with a reranker, the best `rerank_factor * top_k` re-scored."""
    started = time.perf_counter()
    wanted = top_k * rerank_factor if reranker is not None else top_k
    hits = index.search(query.reshape(1, -1).astype(np.float32), wanted, category)[0]
    searched = time.perf_counter()
    if reranker is None or not hits:
        return Ranking([RankedRow(h.row, h.score, h.score) for h in hits[:top_k]], searched - started, 0.0)
    rows = np.array([h.row for h in hits], dtype=np.int64)
    scores = reranker(query, index.view_embeddings_of(rows))
    order = np.argsort(-scores, kind="stable")[:top_k]
    ranked = [RankedRow(int(rows[i]), float(scores[i]), hits[i].score) for i in order]
    return Ranking(ranked, searched - started, time.perf_counter() - searched)


def shape_urls(root_path: str, shape_id: str) -> tuple[str, str]:
    """(thumbnail URL, mesh URL), relative to the server so they work behind a proxy's path prefix too."""
    base = f"{root_path}/shapes/{quote(shape_id, safe='/')}"
    return f"{base}/thumbnail", f"{base}/mesh"


class Retriever:
    """One photo in, ranked shapes of the index version serving when it arrived out; decoding and search run off
    the event loop, encoding in the batcher's thread together with concurrent requests' photos."""

    def __init__(
        self,
        encoder: QueryEncoder,
        batcher: MicroBatcher[PhotoInput, np.ndarray],
        served: ServedIndex,
        limits: ImageLimits,
        metrics: ServiceMetrics,
        rerank_factor: int,
    ) -> None:
        self.encoder = encoder
        self.batcher = batcher
        self.served = served
        self.limits = limits
        self.metrics = metrics
        self.rerank_factor = rerank_factor

    async def retrieve(
        self, photo: bytes, mask: bytes | None, top_k: int, category: str | None = None, rerank: bool = False
    ) -> Retrieval:
        started = time.perf_counter()
        index = self.served.current  # this request's version, whatever reload happens meanwhile
        check_category(index, category)
        with self.batcher.expecting():
            prepared = await asyncio.to_thread(prepare_query, photo, mask, self.limits, self.encoder.image_size)
        try:
            encoded = await self.batcher.submit(prepared.encoder_input)
        except BatcherStopped as err:
            raise NotReady(str(err)) from err
        reranker = self.encoder.rerank if rerank else None
        ranking = await asyncio.to_thread(
            rank_shapes, index, encoded.result, top_k, category, reranker, self.rerank_factor
        )
        seconds = {
            "decode": prepared.decode_s,
            "preprocess": prepared.preprocess_s,
            "queue": encoded.queued_s,
            "encode": encoded.run_s,
            "search": ranking.search_s,
            "rerank": ranking.rerank_s,
            "total": time.perf_counter() - started,
        }
        self.metrics.observe_stages(seconds)
        shapes = [RetrievedShape(index.manifest.shapes[r.row], r.score, r.search_score) for r in ranking.rows]
        return Retrieval(index.name, shapes, rerank, encoded.batch_size, seconds)
