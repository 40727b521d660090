"""The manifest of one index version: what is in it, where it came from, and how it was made.

`manifest.json` holds everything but the shapes; the shapes are columns in `shapes.npz` (indexer/shape_table.py),
so that reading a manifest costs the same at ten shapes and at a million. Versions written before that (format 1)
list their shapes in the JSON and still open.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from photo2cad.files import write_bytes_atomically
from photo2cad.indexer.shape_table import ShapeEntry, ShapeTable
from photo2cad.indexer.vector_search import IndexKind, SearchConfig
from photo2cad.shapes.settings import RenderSettings

MANIFEST_FORMAT = 2
MANIFEST_NAME = "manifest.json"

__all__ = ["FailedEntry", "IndexCounts", "Manifest", "ShapeEntry", "WeightsIdentity"]


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
    model_config = ConfigDict(arbitrary_types_allowed=True)

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
    index_params: dict[str, Any] = Field(default_factory=dict, description="as built: lists, probe, ef_search, recall")
    search: SearchConfig | None = Field(None, description="the search as asked for (None: written before it was)")
    max_faces: int | None = Field(None, description="meshes above it were simplified before rendering; None: never")
    approximate_recall_at_10: float | None = Field(None, description="against exact search, for ivf and hnsw")
    counts: IndexCounts
    shapes: ShapeTable = Field(exclude=True, description="row i describes row i of the vectors (shapes.npz)")
    failures: list[FailedEntry] = Field(default_factory=list)

    @field_validator("shapes", mode="before")
    @classmethod
    def _entries_to_table(cls, value: object) -> object:
        if isinstance(value, ShapeTable):
            return value
        return ShapeTable.from_entries(ShapeEntry.model_validate(e) for e in value)  # type: ignore[attr-defined]

    def search_config(self) -> SearchConfig:
        """How this version's vectors were asked to be searched: what a rebuild keeps unless told otherwise."""
        return self.search or SearchConfig(kind=self.index_kind)

    def write(self, directory: Path) -> None:
        """The shapes table first, then the JSON: a manifest.json on disk always has its shapes beside it."""
        self.shapes.save(directory)
        write_bytes_atomically(directory / MANIFEST_NAME, self.model_dump_json(indent=2).encode())

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        data = json.loads((directory / MANIFEST_NAME).read_text())
        if "shapes" not in data:  # format 2 and later: the shapes live in their own file
            data["shapes"] = ShapeTable.load(directory)
        return cls.model_validate(data)
