"""POST /retrieve: one photo in, ranked shapes out."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request

from photo2cad.service.batcher import BatcherStopped
from photo2cad.service.errors import NotReady
from photo2cad.service.retriever import check_category, prepare_query, rank_shapes, shape_urls
from photo2cad.service.schemas import RankedShape, RetrieveForm, RetrieveResponse, StageTimings, error_responses
from photo2cad.service.state import ServiceState, service_state

router = APIRouter(tags=["retrieval"])


@router.post(
    "/retrieve",
    response_model=RetrieveResponse,
    responses=error_responses(400, 413, 415, 503),
    summary="Rank the indexed shapes by similarity to the object in a photo",
)
async def retrieve(
    request: Request,
    form: Annotated[RetrieveForm, Form(media_type="multipart/form-data")],
    state: Annotated[ServiceState, Depends(service_state)],
) -> RetrieveResponse:
    started = time.perf_counter()
    index = state.holder.current  # this request's version, whatever reload happens meanwhile
    check_category(index, form.category)
    photo = await form.photo.read()
    mask = await form.mask.read() if form.mask is not None else None
    if mask == b"" and not (form.mask and form.mask.filename):
        mask = None  # an HTML form's empty file field: no mask was chosen
    with state.batcher.expecting():
        prepared = await asyncio.to_thread(prepare_query, photo, mask, state.limits, state.encoder.image_size)
    try:
        encoded = await state.batcher.submit(prepared.encoder_input)
    except BatcherStopped as err:
        raise NotReady(str(err)) from err
    reranker = state.encoder.rerank if form.rerank else None
    ranking = await asyncio.to_thread(
        rank_shapes, index, encoded.result, form.top_k, form.category, reranker, state.settings.rerank_factor
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
    state.metrics.observe_stages(seconds)
    root_path = request.scope.get("root_path", "")
    results = []
    for rank, ranked in enumerate(ranking.rows, start=1):
        entry = index.manifest.shapes[ranked.row]
        thumbnail_url, mesh_url = shape_urls(root_path, entry.shape_id)
        results.append(
            RankedShape(
                rank=rank,
                shape_id=entry.shape_id,
                score=ranked.score,
                search_score=ranked.search_score,
                category=entry.category,
                thumbnail_url=thumbnail_url,
                mesh_url=mesh_url,
            )
        )
    return RetrieveResponse(
        index_version=index.version,
        results=results,
        reranked=form.rerank,
        batch_size=encoded.batch_size,
        timings=StageTimings(**{f"{stage}_ms": value * 1000.0 for stage, value in seconds.items()}),
    )
