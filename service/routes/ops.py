"""Liveness, readiness, metrics and what the served index holds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from photo2cad.service.metrics import ServiceMetrics
from photo2cad.service.schemas import (
    CategoryCount,
    Health,
    IndexInfo,
    Readiness,
    WeightsInfo,
    error_responses,
)
from photo2cad.service.state import ServiceState, metrics_of, service_state

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "model or index not loaded (starting or stopping)"}},
    summary="Model and index are loaded and requests are served",
)
async def readyz(request: Request) -> Readiness | JSONResponse:
    state: ServiceState | None = getattr(request.app.state, "service", None)
    if state is None or not state.ready:
        body = Readiness(ready=False, detail="starting or stopping")
        return JSONResponse(body.model_dump(), status_code=503)
    index = state.served.current
    return Readiness(ready=True, index_version=index.name, shapes=index.size, device=str(state.encoder.device))


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics",
)
async def metrics(metrics: Annotated[ServiceMetrics, Depends(metrics_of)]) -> Response:
    return Response(metrics.render(), media_type=metrics.content_type)


@router.get("/index", response_model=IndexInfo, responses=error_responses(503), summary="The index version served")
async def index_info(state: Annotated[ServiceState, Depends(service_state)]) -> IndexInfo:
    index = state.served.current
    manifest = index.manifest
    return IndexInfo(
        version=manifest.version,
        created_at=manifest.created_at,
        shapes=index.size,
        categories=[CategoryCount(name=c, shapes=len(index.rows_by_category[c])) for c in index.categories],
        views_per_shape=manifest.render.num_views,
        embedding_dim=manifest.embedding_dim,
        index_kind=manifest.index_kind,
        weights=WeightsInfo(
            file_name=state.encoder.weights_path.name,
            sha256=state.encoder.weights_sha256,
            matches_index=state.encoder.weights_sha256 == manifest.weights.sha256,
        ),
        image_size=state.encoder.image_size,
        max_batch_photos=state.settings.max_batch_photos,
        api_key_required=state.settings.api_key is not None,
        score_bands=state.encoder.score_bands,
    )
