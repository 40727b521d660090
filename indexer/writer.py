"""Writing one index version: its rows gathered from wherever they were made, its vector search, its manifest.

Rows come from the current version (unchanged shapes) or from the build's shards; they are copied into the new
version's arrays on disk chunk by chunk, so a version of a million shapes is written in bounded memory. The version
is validated in a hidden staging folder and only then given its name; a version that fails validation is removed.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photo2cad.errors import Photo2CadError
from photo2cad.indexer import layout
from photo2cad.indexer.manifest import FailedEntry, IndexCounts, Manifest, WeightsIdentity
from photo2cad.indexer.shape_table import ShapeEntry, ShapeTable, table_order
from photo2cad.indexer.shards import read_arrays, thumbnail_name
from photo2cad.indexer.vector_search import SearchConfig, VectorSearch
from photo2cad.indexer.version import IndexVersion
from photo2cad.shapes.meshes import file_checksum
from photo2cad.shapes.settings import RenderSettings
from photo2cad.weights.checkpoint import CheckpointHeader

log = logging.getLogger(__name__)

_CHUNK_ROWS = 65_536


class BuildError(Photo2CadError):
    """A build cannot start or cannot finish; the published index is untouched."""


@dataclass(frozen=True)
class RowSource:
    """Where a finished shape's vectors are: row `row` of a shard file, or of the current version (shard None)."""

    shard: Path | None
    row: int

    @classmethod
    def published(cls, row: int) -> RowSource:
        return cls(None, row)

    @classmethod
    def in_shard(cls, path: Path, row: int) -> RowSource:
        return cls(path, row)


@dataclass(frozen=True)
class VersionPlan:
    out: Path
    rows: list[tuple[ShapeEntry, RowSource]]
    failures: list[FailedEntry]
    header: CheckpointHeader
    weights: Path
    pool_root: str
    render: RenderSettings
    search: SearchConfig
    max_faces: int | None
    categories_csv: Path | None
    embedding_dim: int  # of the shape vectors (models.amvml.vector_dim)
    view_embedding_dim: int  # of the view embeddings (the network's embedding, without prior)
    published: IndexVersion | None
    shard_thumbnails: Path

    def same_as(self, manifest: Manifest) -> bool:
        """Whether this version would hold exactly what `manifest`'s does, searched the same way."""
        if any(source.shard is not None for _, source in self.rows) or len(self.rows) != len(manifest.shapes):
            return False
        entries = [self.rows[i][0] for i in table_order([entry for entry, _ in self.rows])]
        return (
            manifest.pool_root == self.pool_root
            and manifest.categories_csv == _csv_text(self.categories_csv)
            and manifest.search_config() == self.search
            and all(a == b for a, b in zip(entries, manifest.shapes, strict=True))
            and _failure_set(self.failures) == _failure_set(manifest.failures)
        )


def _csv_text(path: Path | None) -> str | None:
    return str(path.resolve()) if path else None


def _failure_set(failures: list[FailedEntry]) -> set[tuple[str, str]]:
    return {(f.source_path, f.reason) for f in failures}


def weights_identity(path: Path, header: CheckpointHeader) -> WeightsIdentity:
    return WeightsIdentity(
        path=str(path),
        sha256=file_checksum(path),
        architecture=header.architecture,
        backbone=str(header.config.get("backbone")),
        training_data=header.training_data,
        created_at=header.created_at,
    )


def write_version(plan: VersionPlan) -> tuple[Path, float | None]:
    """Write, validate and name a new version directory (not yet published); returns it and its recall@10."""
    from photo2cad.indexer.verify import verify_version  # verify opens versions: below the writer

    order = table_order([entry for entry, _ in plan.rows])
    rows = [plan.rows[i] for i in order]
    name = layout.new_version_name()
    staging = plan.out / f".{name}.partial"
    staging.mkdir()
    try:
        _link_thumbnails(rows, staging, plan)
        views = plan.render.num_views
        vectors = np.lib.format.open_memmap(
            staging / layout.VECTORS, mode="w+", dtype=np.float32, shape=(len(rows), plan.embedding_dim)
        )
        view_embeddings = np.lib.format.open_memmap(
            staging / layout.VIEW_EMBEDDINGS,
            mode="w+",
            dtype=np.float16,
            shape=(len(rows), views, plan.view_embedding_dim),
        )
        _gather_rows(rows, plan.published, vectors, view_embeddings)
        vectors.flush()
        view_embeddings.flush()
        search = VectorSearch.build(vectors, plan.search)
        search.save(staging / layout.FAISS_FILE)
        recall = search.params.get("recall_at_10")
        manifest = Manifest(
            version=name,
            pool_root=plan.pool_root,
            categories_csv=_csv_text(plan.categories_csv),
            render=plan.render,
            render_identity=plan.render.identity(),
            weights=weights_identity(plan.weights.resolve(), plan.header),
            embedding_dim=plan.embedding_dim,
            index_kind=plan.search.kind,
            index_params=search.params,
            search=plan.search,
            approximate_recall_at_10=recall,
            max_faces=plan.max_faces,
            counts=IndexCounts(shapes=len(rows), failed=len(plan.failures), views=len(rows) * views),
            shapes=ShapeTable.from_entries(entry for entry, _ in rows),
            failures=plan.failures,
        )
        manifest.write(staging)
        del vectors, view_embeddings, search
        problems = verify_version(staging, check_sources=False)
        if problems:
            raise BuildError("the new index failed validation: " + "; ".join(problems))
        version_dir = plan.out / name
        staging.rename(version_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return version_dir, recall


def _link_thumbnails(rows: list[tuple[ShapeEntry, RowSource]], staging: Path, plan: VersionPlan) -> None:
    """Hard links where the file system allows (thumbnails never change once written), copies elsewhere."""
    (staging / layout.THUMBNAILS).mkdir()
    for entry, source in rows:
        if source.shard is None:
            assert plan.published is not None
            origin = plan.published.directory / plan.published.manifest.shapes[source.row].thumbnail
        else:
            origin = plan.shard_thumbnails / thumbnail_name(entry.shape_id)
        target = staging / entry.thumbnail
        try:
            os.link(origin, target)
        except OSError:
            shutil.copyfile(origin, target)


def _gather_rows(
    rows: list[tuple[ShapeEntry, RowSource]],
    published: IndexVersion | None,
    vectors: np.ndarray,
    view_embeddings: np.ndarray,
) -> None:
    by_shard: dict[Path, list[tuple[int, int]]] = defaultdict(list)
    from_published: list[tuple[int, int]] = []
    for position, (_, source) in enumerate(rows):
        if source.shard is None:
            from_published.append((source.row, position))
        else:
            by_shard[source.shard].append((source.row, position))
    for shard, pairs in by_shard.items():
        shard_vectors, shard_views = read_arrays(shard)
        taken, placed = (np.array(column) for column in zip(*pairs, strict=True))
        vectors[placed] = shard_vectors[taken]
        view_embeddings[placed] = shard_views[taken]
    if from_published:
        assert published is not None
        pairs_array = np.array(sorted(from_published))  # in source order: the memory-mapped file is read forwards
        for start in range(0, len(pairs_array), _CHUNK_ROWS):
            taken, placed = pairs_array[start : start + _CHUNK_ROWS].T
            vectors[placed] = published.vectors[taken]
            view_embeddings[placed] = published.view_embeddings[taken]
