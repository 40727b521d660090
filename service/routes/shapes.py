"""GET /shapes/{id}, its thumbnail and its mesh. Ids contain '/', hence the path converter; the two file routes
are registered first so that '/thumbnail' and '/mesh' are not read as part of an id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from photo2cad.service.retriever import shape_urls
from photo2cad.service.schemas import ShapeInfo, error_responses
from photo2cad.service.shape_files import mesh_file, mesh_media_type, shape_entry, thumbnail_file
from photo2cad.service.state import ServiceState, service_state

router = APIRouter(prefix="/shapes", tags=["shapes"])


@router.get(
    "/{shape_id:path}/thumbnail",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}, "description": "JPEG render"}, **error_responses(403, 404)},
    summary="A grey render of the shape",
)
async def shape_thumbnail(shape_id: str, state: Annotated[ServiceState, Depends(service_state)]) -> FileResponse:
    path = thumbnail_file(state.served.current, shape_id)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=300"})


@router.get(
    "/{shape_id:path}/mesh",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the mesh file as indexed"},
        **error_responses(403, 404),
    },
    summary="The shape's mesh file from the pool",
)
async def shape_mesh(shape_id: str, state: Annotated[ServiceState, Depends(service_state)]) -> FileResponse:
    path = mesh_file(state.served.current, shape_id)
    return FileResponse(path, media_type=mesh_media_type(path), filename=path.name)


@router.get("/{shape_id:path}", response_model=ShapeInfo, responses=error_responses(404), summary="One indexed shape")
async def shape_info(
    shape_id: str, request: Request, state: Annotated[ServiceState, Depends(service_state)]
) -> ShapeInfo:
    index = state.served.current
    entry = shape_entry(index, shape_id)
    thumbnail_url, mesh_url = shape_urls(request.scope.get("root_path", ""), entry.shape_id)
    return ShapeInfo(
        shape_id=entry.shape_id,
        category=entry.category,
        source_path=entry.source_path,
        checksum=entry.checksum,
        thumbnail_url=thumbnail_url,
        mesh_url=mesh_url,
        index_version=index.name,
    )
