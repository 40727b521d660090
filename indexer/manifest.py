"""The manifest of one index version: what is in it, where it came from, and how it was made."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from photo2cad.indexer.vector_search import IndexKind
from photo2cad.shapes.settings import RenderSettings

MANIFEST_FORMAT = 1
MANIFEST_NAME = "manifest.json"


class ShapeEntry(BaseModel):
    shape_id: str
    source_path: str = Field(description="mesh file, relative to the pool root")
    category: str | None
    checksum: str = Field(description="sha256 of the mesh file")
    thumbnail: str = Field(description="JPEG, relative to the version directory")


class FailedEntry(BaseModel):
    source_path: str
    reason: str
    checksum: str | None = None


class WeightsIdentity(BaseModel):
    path: str
    sha256: str
    architecture: str
    backbone: str
    training_data: str
    created_at: datetime


class IndexCounts(BaseModel):
    shapes: int
    failed: int
    views: int


class Manifest(BaseModel):
    format_version: int = MANIFEST_FORMAT
    version: str
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    pool_root: str
    categories_csv: str | None = None
    render: RenderSettings
    render_identity: str
    gl_renderer: str | None = None
    weights: WeightsIdentity
    embedding_dim: int
    index_kind: IndexKind
    index_params: dict[str, Any] = Field(default_factory=dict)
    approximate_recall_at_10: float | None = Field(None, description="against exact search, for ivf and hnsw")
    counts: IndexCounts
    shapes: list[ShapeEntry]
    failures: list[FailedEntry] = Field(default_factory=list)

    def write(self, directory: Path) -> None:
        (directory / MANIFEST_NAME).write_text(self.model_dump_json(indent=2))

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        return cls.model_validate_json((directory / MANIFEST_NAME).read_text())
