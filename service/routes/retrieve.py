"""POST /retrieve (one photo) and POST /retrieve/batch (several): parse the form, let the Retriever work, format."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError

from photo2cad.service.errors import BadImage, ServiceError, status_for
from photo2cad.service.images import Box
from photo2cad.service.retriever import Query, Retrieval, shape_links
from photo2cad.service.schemas import (
    BatchItem,
    RankedShape,
    RetrieveBatchForm,
    RetrieveBatchResponse,
    RetrieveForm,
    RetrieveResponse,
    StageTimings,
    error_responses,
)
from photo2cad.service.security import require_api_key
from photo2cad.service.state import ServiceState, service_state


def refuse_url_parameters(request: Request) -> None:
    """The retrieval options are form fields. FastAPI ignores a URL parameter nobody declared, so `?top_k=3` would
    silently return the default ten: refuse it as the form refuses an unknown field, naming where it belongs."""
    if not request.query_params:
        return
    form_fields = set(RetrieveForm.model_fields) | set(RetrieveBatchForm.model_fields)
    problems = [
        {
            "type": "extra_forbidden",
            "loc": ("query", name),
            "msg": f"not a URL parameter: send {name} as a form field"
            if name in form_fields
            else "Extra inputs are not permitted (the options are form fields)",
        }
        for name in request.query_params
    ]
    raise RequestValidationError(problems)


router = APIRouter(tags=["retrieval"], dependencies=[Depends(require_api_key), Depends(refuse_url_parameters)])


def chosen_file(upload: UploadFile | None) -> UploadFile | None:
    """None for an HTML form's file field left empty (no name, no bytes): nothing was chosen."""
    if upload is None or (not upload.filename and upload.size == 0):
        return None
    return upload


def response_for(retrieval: Retrieval, root_path: str) -> RetrieveResponse:
    results = []
    for rank, shape in enumerate(retrieval.shapes, start=1):
        links = shape_links(root_path, shape.entry)
        results.append(
            RankedShape(
                rank=rank,
                shape_id=shape.entry.shape_id,
                score=shape.score,
                search_score=shape.search_score,
                category=shape.entry.category,
                thumbnail_url=links.thumbnail_url,
                mesh_url=links.mesh_url,
                mesh_format=links.mesh_format,
                glb_url=links.glb_url,
                match=shape.match,
            )
        )
    return RetrieveResponse(
        index_version=retrieval.index_version,
        results=results,
        reranked=retrieval.reranked,
        batch_size=retrieval.batch_size,
        timings=StageTimings(**{f"{stage}_ms": value * 1000.0 for stage, value in retrieval.seconds.items()}),
    )


def batch_items(
    filenames: Sequence[str | None], answers: Sequence[Retrieval | ServiceError], root_path: str
) -> list[BatchItem]:
    """One item per photo: its ranking, or the status and reason POST /retrieve would have refused it with."""
    items = []
    for filename, answer in zip(filenames, answers, strict=True):
        if isinstance(answer, Retrieval):
            items.append(BatchItem(filename=filename, status=200, answer=response_for(answer, root_path)))
        else:
            items.append(BatchItem(filename=filename, status=status_for(answer), detail=str(answer)))
    return items


@router.post(
    "/retrieve",
    response_model=RetrieveResponse,
    responses=error_responses(400, 401, 408, 413, 415, 503),
    summary="Rank the indexed shapes by similarity to the object in a photo",
)
async def retrieve(
    request: Request,
    form: Annotated[RetrieveForm, Form(media_type="multipart/form-data")],
    state: Annotated[ServiceState, Depends(service_state)],
) -> RetrieveResponse:
    mask = chosen_file(form.mask)
    query = Query(
        photo=form.photo.file,  # the spooled upload: read while decoding, never held whole in memory before
        mask=mask.file if mask is not None else None,
        box=Box.parse(form.box) if form.box is not None else None,
    )
    retrieval = await state.retriever.retrieve(query, form.top_k, form.category, form.rerank)
    return response_for(retrieval, request.scope.get("root_path", ""))


@router.post(
    "/retrieve/batch",
    response_model=RetrieveBatchResponse,
    responses=error_responses(400, 401, 408, 413, 503),
    summary="Rank the indexed shapes for each of several photos (one refused photo does not fail the others)",
)
async def retrieve_batch(
    request: Request,
    form: Annotated[RetrieveBatchForm, Form(media_type="multipart/form-data")],
    state: Annotated[ServiceState, Depends(service_state)],
) -> RetrieveBatchResponse:
    limit = state.settings.max_batch_photos
    if len(form.photos) > limit:
        raise BadImage(
            f"{len(form.photos)} photos in one batch, more than the limit of {limit} (PHOTO2CAD_MAX_BATCH_PHOTOS)"
        )
    queries = [Query(photo=upload.file) for upload in form.photos]
    batch = await state.retriever.retrieve_many(queries, form.top_k, form.category, form.rerank)
    filenames = [upload.filename for upload in form.photos]
    items = batch_items(filenames, batch.answers, request.scope.get("root_path", ""))
    return RetrieveBatchResponse(index_version=batch.index_version, items=items)
