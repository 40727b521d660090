"""The retrieval pipeline: uploaded bytes -> decoded, checked photo -> batched encoder -> search -> re-rank.

`Retriever.retrieve` owns the whole way for one photo, so that an HTTP route (or any other caller) only parses its
input and formats the answer. The steps are plain functions, each testable alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import quote

import numpy as np
from PIL import Image

from photo2cad.indexer import IndexVersion
from photo2cad.indexer.manifest import ShapeEntry
from photo2cad.models.preprocess import binary_mask, binary_mask_to_tensor, flatten_photo, rgb_to_tensor
from photo2cad.service.admission import DecodeBudget, InFlightLimit
from photo2cad.service.batcher import BatcherStopped, MicroBatcher
from photo2cad.service.encoder import PhotoInput, QueryEncoder
from photo2cad.service.errors import BadImage, NotReady, ServiceError, UnknownCategory
from photo2cad.service.images import (
    Box,
    ImageLimits,
    ImageSource,
    OpenedImage,
    check_box_inside,
    check_mask_fits,
    crop_to_box,
    draft_for,
    load_upright,
    open_image,
    shrink,
)
from photo2cad.service.metrics import ServiceMetrics
from photo2cad.service.served_index import ServedIndex
from photo2cad.weights.bands import Match

# (query (D,), candidates' view embeddings (N, V, D)) -> (N,) scores
Reranker = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # query, view embeddings, shape vectors


@dataclass(frozen=True)
class Query:
    """One photo to rank, as uploaded: optional object mask (same size; non-zero = object) and box to crop to."""

    photo: ImageSource
    mask: ImageSource | None = None
    box: Box | None = None


@dataclass(frozen=True)
class OpenedQuery:
    """A query whose headers passed every check; nothing decoded yet."""

    photo: OpenedImage
    mask: OpenedImage | None
    box: Box | None

    @property
    def decode_cost(self) -> int:
        return self.photo.decode_cost + (self.mask.decode_cost if self.mask is not None else 0)


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
    search_score: float  # inner product of photo and shape vector (a cosine, plus any category term)
    match: Match | None  # the band of search_score, when the weights' bands were measured


@dataclass(frozen=True)
class Retrieval:
    index_version: str
    shapes: list[RetrievedShape]  # best first
    reranked: bool
    batch_size: int  # photos embedded together with this one
    seconds: dict[str, float]  # per stage (decode_wait, decode, preprocess, queue, encode, search, rerank) and total


@dataclass(frozen=True)
class BatchRetrieval:
    index_version: str
    answers: list[Retrieval | ServiceError]  # one per query, in order


def open_query(query: Query, limits: ImageLimits, image_size: int) -> OpenedQuery:
    """Read and check the headers of the photo and mask, and the box against them; decoding is planned, not done."""
    photo = open_image(query.photo, "photo", limits)
    mask = open_image(query.mask, "mask", limits) if query.mask is not None else None
    if mask is not None:
        check_mask_fits(photo, mask)
    if query.box is not None:
        check_box_inside(query.box, photo.upright_size, limits)
    # 2x the input side keeps the JPEG draft decoder's downscaling well above what letterboxing throws away.
    for opened in (photo, mask):
        if opened is not None:
            draft_for(opened, 2 * image_size, query.box)
    return OpenedQuery(photo, mask, query.box)


def _object_mask(opened: OpenedQuery, alpha: Image.Image | None) -> Image.Image | None:
    """The mask sent, else the photo's own alpha, else None (the network's mask head decides)."""
    if opened.mask is None:
        return alpha
    mask = binary_mask(load_upright(opened.mask))
    if mask.getextrema()[1] == 0:
        raise BadImage("the mask is empty: no pixel is non-zero (non-zero = object); send a mask that marks the object")
    return mask


def decode_query(opened: OpenedQuery, image_size: int) -> PreparedQuery:
    """Decode, crop to the box, and letterbox the photo (and mask) exactly as training did."""
    started = time.perf_counter()
    photo, alpha = flatten_photo(load_upright(opened.photo))
    if alpha is not None and alpha.getextrema()[1] == 0:
        raise BadImage("the photo is fully transparent: nothing in it can be matched")
    mask = _object_mask(opened, alpha)
    if opened.box is not None:
        photo = crop_to_box(photo, opened.box, opened.photo.upright_size)
        if mask is not None:
            mask = crop_to_box(mask, opened.box, opened.photo.upright_size)
            if mask.getextrema()[1] == 0:
                raise BadImage(f"the box {opened.box} holds no object pixel of the mask; draw it around the object")
    photo = shrink(photo, 2 * image_size)
    mask = shrink(mask, 2 * image_size) if mask is not None else None
    decoded = time.perf_counter()
    # Upright and flattened above, with the orientation read from the header: what is left is letterboxing (and,
    # for the mask, counting as object every pixel that shrinking left partly covered, as a sent mask's non-zero).
    photo_tensor = rgb_to_tensor(photo, image_size)
    mask_tensor = binary_mask_to_tensor(binary_mask(mask), image_size) if mask is not None else None
    if mask_tensor is not None and not mask_tensor.any():
        raise BadImage(
            f"the object in the mask is too small to be seen at the encoder's {image_size} x {image_size} px input; "
            "send a mask (or a box) in which the object is larger"
        )
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
    scores = reranker(query, index.view_embeddings_of(rows), index.vectors_of(rows))
    order = np.argsort(-scores, kind="stable")[:top_k]
    ranked = [RankedRow(int(rows[i]), float(scores[i]), hits[i].score) for i in order]
    return Ranking(ranked, searched - started, time.perf_counter() - searched)


@dataclass(frozen=True)
class ShapeLinks:
    thumbnail_url: str
    mesh_url: str
    glb_url: str
    mesh_format: str  # the original file's extension, lower case, without the dot


def shape_links(root_path: str, entry: ShapeEntry) -> ShapeLinks:
    """URLs relative to the server, so that they work behind a proxy's path prefix too."""
    base = f"{root_path}/shapes/{quote(entry.shape_id, safe='/')}"
    mesh_format = PurePosixPath(entry.source_path).suffix.lower().lstrip(".")
    return ShapeLinks(f"{base}/thumbnail", f"{base}/mesh", f"{base}/glb", mesh_format)


class Retriever:
    """Photos in, ranked shapes of the index version serving when they arrived out; decoding and search run off the
    event loop, encoding in the batcher's thread together with concurrent requests' photos. The HTTP routes and the
    `photo2cad query` command both go through it."""

    def __init__(
        self,
        encoder: QueryEncoder,
        batcher: MicroBatcher[PhotoInput, np.ndarray],
        served: ServedIndex,
        limits: ImageLimits,
        metrics: ServiceMetrics,
        rerank_factor: int,
        in_flight: InFlightLimit,
        decode_budget: DecodeBudget,
    ) -> None:
        self.encoder = encoder
        self.batcher = batcher
        self.served = served
        self.limits = limits
        self.metrics = metrics
        self.rerank_factor = rerank_factor
        self.in_flight = in_flight
        self.decode_budget = decode_budget

    async def retrieve(self, query: Query, top_k: int, category: str | None = None, rerank: bool = False) -> Retrieval:
        index = self.served.current  # this request's version, whatever reload happens meanwhile
        check_category(index, category)
        with self.in_flight.admit():
            return await self._retrieve(index, query, top_k, category, rerank)

    async def retrieve_many(
        self, queries: Sequence[Query], top_k: int, category: str | None = None, rerank: bool = False
    ) -> BatchRetrieval:
        """Each query's retrieval, or the reason it was refused; one refused photo does not fail the others."""
        index = self.served.current  # one version for the whole batch
        check_category(index, category)
        with self.in_flight.admit(len(queries)):
            answers = await asyncio.gather(
                *(self._retrieve(index, query, top_k, category, rerank) for query in queries), return_exceptions=True
            )
        kept: list[Retrieval | ServiceError] = []
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, ServiceError):
                raise answer  # a bug or a shutdown, not a refused photo
            kept.append(answer)
        return BatchRetrieval(index.name, kept)

    async def _retrieve(
        self, index: IndexVersion, query: Query, top_k: int, category: str | None, rerank: bool
    ) -> Retrieval:
        started = time.perf_counter()
        image_size = self.encoder.image_size
        opened = await asyncio.to_thread(open_query, query, self.limits, image_size)
        async with self.decode_budget.reserve(opened.decode_cost):
            admitted = time.perf_counter()
            # Announced only now: a batch may wait a few ms for a photo being decoded, not for one queued to be.
            with self.batcher.expecting():
                prepared = await asyncio.to_thread(decode_query, opened, image_size)
                del opened  # the full-size pixels: freed before this request waits for the encoder
        try:
            encoded = await self.batcher.submit(prepared.encoder_input)
        except BatcherStopped as err:
            raise NotReady(str(err)) from err
        reranker = self.encoder.rerank if rerank else None
        ranking = await asyncio.to_thread(
            rank_shapes, index, encoded.result, top_k, category, reranker, self.rerank_factor
        )
        seconds = {
            "decode_wait": admitted - started,
            "decode": prepared.decode_s,
            "preprocess": prepared.preprocess_s,
            "queue": encoded.queued_s,
            "encode": encoded.run_s,
            "search": ranking.search_s,
            "rerank": ranking.rerank_s,
            "total": time.perf_counter() - started,
        }
        self.metrics.observe_stages(seconds)
        bands = self.encoder.score_bands
        shapes = [
            RetrievedShape(
                index.manifest.shapes[r.row],
                r.score,
                r.search_score,
                bands.match(r.search_score) if bands is not None else None,
            )
            for r in ranking.rows
        ]
        return Retrieval(index.name, shapes, rerank, encoded.batch_size, seconds)
