"""GET /shapes/{id}, its thumbnail, its mesh and the mesh as GLB. Ids contain '/', hence the path converter; the
file routes are registered first so that '/thumbnail', '/mesh' and '/glb' are not read as part of an id."""

from __future__ import annotations

import asyncio
from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response

from photo2cad.service.retriever import shape_links
from photo2cad.service.schemas import ShapeInfo, error_responses
from photo2cad.service.security import require_api_key
from photo2cad.service.shape_files import glb_bytes, mesh_file, mesh_media_type, shape_entry, thumbnail_file
from photo2cad.service.state import ServiceState, service_state

router = APIRouter(prefix="/shapes", tags=["shapes"], dependencies=[Depends(require_api_key)])


@router.get(
    "/{shape_id:path}/thumbnail",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}, "description": "JPEG render"}, **error_responses(401, 403, 404)},
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
        **error_responses(401, 403, 404),
    },
    summary="The shape's mesh file from the pool",
)
async def shape_mesh(shape_id: str, state: Annotated[ServiceState, Depends(service_state)]) -> FileResponse:
    path = mesh_file(state.served.current, shape_id)
    return FileResponse(path, media_type=mesh_media_type(path), filename=path.name)


@router.get(
    "/{shape_id:path}/glb",
    response_class=Response,
    responses={
        200: {"content": {"model/gltf-binary": {}}, "description": "the mesh as one binary glTF, materials included"},
        **error_responses(401, 403, 404, 500),
    },
    summary="The shape's mesh as one GLB file (an OBJ's .mtl and textures packed in)",
)
async def shape_glb(shape_id: str, state: Annotated[ServiceState, Depends(service_state)]) -> Response:
    path = mesh_file(state.served.current, shape_id)
    async with state.mesh_conversions:  # one at a time: a big mesh takes seconds and hundreds of MB
        data = await asyncio.to_thread(glb_bytes, path)
    name = PurePosixPath(path.name).with_suffix(".glb").name
    return Response(
        data, media_type="model/gltf-binary", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get(
    "/{shape_id:path}", response_model=ShapeInfo, responses=error_responses(401, 404), summary="One indexed shape"
)
async def shape_info(
    shape_id: str, request: Request, state: Annotated[ServiceState, Depends(service_state)]
) -> ShapeInfo:
    index = state.served.current
    entry = shape_entry(index, shape_id)
    links = shape_links(request.scope.get("root_path", ""), entry)
    return ShapeInfo(
        shape_id=entry.shape_id,
        category=entry.category,
        source_path=entry.source_path,
        checksum=entry.checksum,
        thumbnail_url=links.thumbnail_url,
        mesh_url=links.mesh_url,
        mesh_format=links.mesh_format,
        glb_url=links.glb_url,
        index_version=index.name,
    )
