"""Every request and response body of the HTTP API, so that /docs describes the API completely."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field, field_validator

from photo2cad.service.images import Box
from photo2cad.weights.bands import Match, ScoreBands

TOP_K_DEFAULT = 10
TOP_K_MAX = 100
PHOTO_FORMATS = "JPEG, PNG, WebP, HEIC/HEIF or AVIF (the bytes decide, not the declared type)"


class SearchOptions(BaseModel):
    """The fields every retrieval form shares."""

    model_config = ConfigDict(extra="forbid")

    top_k: int = Field(TOP_K_DEFAULT, ge=1, le=TOP_K_MAX, description="how many shapes to return")
    category: str | None = Field(None, description="rank only shapes of this category (see GET /index)")
    rerank: bool = Field(
        False,
        description="re-score the best candidates (rerank_factor x top_k) with query-conditioned view attention",
    )

    @field_validator("category", mode="before")
    @classmethod
    def _empty_category_is_none(cls, value: object) -> object:
        return None if value == "" else value


class RetrieveForm(SearchOptions):
    """multipart/form-data of POST /retrieve."""

    photo: UploadFile = Field(description=f"the photo: {PHOTO_FORMATS}")
    mask: UploadFile | None = Field(
        None,
        description="optional object mask of the same size as the photo (non-zero = object; a PNG, since JPEG noise "
        "makes near-black pixels non-zero); without one a transparent photo's alpha is the mask, else the network's "
        "own mask head weights the photo",
    )
    box: str | None = Field(
        None,
        pattern=r"^\d+,\d+,\d+,\d+$",
        description="optional x,y,w,h in pixels of the photo as displayed (after EXIF rotation): the photo (and mask) "
        "are cropped to it before the search",
    )

    @field_validator("box", mode="before")
    @classmethod
    def _empty_box_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("box")
    @classmethod
    def _box_has_area(cls, value: str | None) -> str | None:
        if value is not None:
            Box.parse(value)
        return value


class RetrieveBatchForm(SearchOptions):
    """multipart/form-data of POST /retrieve/batch: several photos, each ranked as POST /retrieve would."""

    photos: list[UploadFile] = Field(description=f"the photos (the field repeated): {PHOTO_FORMATS}")


class StageTimings(BaseModel):
    decode_wait_ms: float = Field(description="waiting until the photo's pixels fit the decoding budget")
    decode_ms: float = Field(description="reading and decoding the uploaded images")
    preprocess_ms: float = Field(description="letterboxing to the network's input size")
    queue_ms: float = Field(description="waiting for the encoder (batching with concurrent requests)")
    encode_ms: float = Field(description="the encoder's forward pass over this request's batch")
    search_ms: float = Field(description="nearest-neighbour search in the index")
    rerank_ms: float = Field(description="re-ranking the candidates (0 without rerank)")
    total_ms: float = Field(description="from the request's arrival at the route to its answer")


class RankedShape(BaseModel):
    rank: int = Field(description="1 = best match")
    shape_id: str
    score: float = Field(
        description="similarity used for the ranking (the re-ranking score with rerank): cosine of photo and shape "
        "vectors, plus the category term of weights that score categories (AMVMLConfig.category_weight)"
    )
    search_score: float = Field(description="inner product of photo and shape vector in the index (as `score`)")
    category: str | None
    thumbnail_url: str
    mesh_url: str
    mesh_format: str = Field(description="the original mesh file's format, as its extension: obj, glb, ply, ...")
    glb_url: str = Field(description="the mesh as one binary glTF file, materials and textures included")
    match: Match | None = Field(
        None,
        description="the band of search_score, measured for the served weights on right and wrong first results of "
        "held-out real photos (GET /index says where the bands lie): strong, the photographed model most often; "
        "weak, a score first results seldom had when right, as when the object is not in the catalogue at all; "
        "null when the weights carry no measured bands",
    )


class RetrieveResponse(BaseModel):
    index_version: str
    results: list[RankedShape]
    reranked: bool
    batch_size: int = Field(description="photos embedded together with this one")
    timings: StageTimings


class BatchItem(BaseModel):
    filename: str | None = Field(description="the file name the client sent the photo under")
    status: int = Field(description="200, or the status POST /retrieve would have refused this photo with")
    detail: str | None = Field(None, description="why the photo was refused")
    answer: RetrieveResponse | None = Field(None, description="the ranking, when status is 200")


class RetrieveBatchResponse(BaseModel):
    index_version: str
    items: list[BatchItem] = Field(description="one per photo, in the order sent")


class ShapeInfo(BaseModel):
    shape_id: str
    category: str | None
    source_path: str = Field(description="the mesh file, relative to the pool")
    checksum: str = Field(description="sha256 of the mesh file")
    thumbnail_url: str
    mesh_url: str
    mesh_format: str = Field(description="the original mesh file's format, as its extension: obj, glb, ply, ...")
    glb_url: str = Field(description="the mesh as one binary glTF file, materials and textures included")
    index_version: str


class CategoryCount(BaseModel):
    name: str
    shapes: int


class WeightsInfo(BaseModel):
    file_name: str = Field(description="the checkpoint's file name (no directory: answers name no server path)")
    sha256: str
    matches_index: bool = Field(description="false only when served with --allow-weights-mismatch")


class IndexInfo(BaseModel):
    version: str
    created_at: datetime
    shapes: int
    categories: list[CategoryCount]
    views_per_shape: int
    embedding_dim: int
    index_kind: str
    weights: WeightsInfo = Field(description="the weights serving queries")
    image_size: int = Field(description="side of the square the encoder sees")
    top_k_max: int = TOP_K_MAX
    max_batch_photos: int = Field(description="most photos POST /retrieve/batch takes")
    api_key_required: bool = Field(description="whether /retrieve and /shapes need the X-API-Key header")
    score_bands: ScoreBands | None = Field(description="what the served weights' scores mean, when measured")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    index_version: str | None = None
    shapes: int | None = None
    device: str | None = None
    detail: str | None = None


class ReloadResult(BaseModel):
    outcome: Literal["reloaded", "unchanged", "refused"]
    version: str = Field(description="the version serving now")
    previous_version: str
    candidate: str | None = Field(None, description="the version directory `current` points at")
    problems: list[str] = Field(default_factory=list)


class ErrorMessage(BaseModel):
    detail: str


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI entries for the errors a route answers with (422 is FastAPI's own, documented already)."""
    return {status: {"model": ErrorMessage} for status in statuses}
