"""POST /retrieve: one photo in, ranked shapes out. Parses the form, lets the Retriever work, formats the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request

from photo2cad.service.retriever import shape_urls
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
    photo = await form.photo.read()
    mask = await form.mask.read() if form.mask is not None else None
    if mask == b"" and not (form.mask and form.mask.filename):
        mask = None  # an HTML form's empty file field: no mask was chosen
    retrieval = await state.retriever.retrieve(photo, mask, form.top_k, form.category, form.rerank)
    root_path = request.scope.get("root_path", "")
    results = []
    for rank, shape in enumerate(retrieval.shapes, start=1):
        thumbnail_url, mesh_url = shape_urls(root_path, shape.entry.shape_id)
        results.append(
            RankedShape(
                rank=rank,
                shape_id=shape.entry.shape_id,
                score=shape.score,
                search_score=shape.search_score,
                category=shape.entry.category,
                thumbnail_url=thumbnail_url,
                mesh_url=mesh_url,
            )
        )
    return RetrieveResponse(
        index_version=retrieval.index_version,
        results=results,
        reranked=retrieval.reranked,
        batch_size=retrieval.batch_size,
        timings=StageTimings(**{f"{stage}_ms": value * 1000.0 for stage, value in retrieval.seconds.items()}),
    )
