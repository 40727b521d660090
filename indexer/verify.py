"""Checks that a version directory can serve, run before it is published and whenever a server swaps it in."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from photo2cad.indexer import layout
from photo2cad.indexer.version import open_index
from photo2cad.shapes.meshes import file_checksum


def verify_version(version_dir: Path, check_sources: bool = True) -> list[str]:
    """Everything that is wrong with one version directory; an empty list means it can serve."""
    problems: list[str] = []
    try:
        index = open_index(version_dir)
    except Exception as err:  # noqa: BLE001 - verification reports, it does not raise
        return [f"cannot open {version_dir}: {type(err).__name__}: {err}"]
    manifest = index.manifest
    count = len(manifest.shapes)
    if index.vectors.shape != (count, manifest.embedding_dim):
        problems.append(f"shape vectors are {index.vectors.shape}, manifest says {count} x {manifest.embedding_dim}")
    if index.view_embeddings.shape[:2] != (count, manifest.render.num_views):
        problems.append(
            f"view embeddings are {index.view_embeddings.shape}, expected {count} x {manifest.render.num_views}"
        )
    if index.vector_search.size != count:
        problems.append(f"the FAISS index holds {index.vector_search.size} vectors, the manifest {count} shapes")
    norms = np.linalg.norm(index.vectors, axis=1)
    if count and not np.allclose(norms, 1.0, atol=1e-3):
        problems.append("shape vectors are not unit length")
    missing = [e.shape_id for e in manifest.shapes if not (index.directory / e.thumbnail).is_file()]
    if missing:
        problems.append(f"{len(missing)} thumbnails missing, e.g. {missing[:3]}")
    if problems:  # the checks below index the arrays by the manifest's rows
        return problems
    if count and manifest.index_kind == "exact":
        sample = np.arange(0, count, max(1, count // 50))
        _, top = index.vector_search.search(index.vectors[sample], 1)
        wrong = int((top[:, 0] != sample).sum())
        # Identical meshes give identical vectors; only a clear majority of misses means a broken index.
        if wrong > len(sample) // 2:
            problems.append(f"self-search misses {wrong} of {len(sample)} shapes")
    if check_sources:
        pool = Path(manifest.pool_root)
        for entry in manifest.shapes:
            source = pool / entry.source_path
            if not source.is_file():
                problems.append(f"source of {entry.shape_id} is gone: {source}")
            elif file_checksum(source) != entry.checksum:
                problems.append(f"source of {entry.shape_id} changed since indexing: run `photo2cad index update`")
    return problems


def verify_index(root: Path) -> list[str]:
    return verify_version(layout.current_version(root))
