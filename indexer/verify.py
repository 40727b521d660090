"""Checks that a version directory can serve, run before it is published and whenever a server swaps it in.

Every check costs about the same at a million shapes as at a thousand: per-row checks (unit length, thumbnails,
self-search) look at an even sample of at most SAMPLE_ROWS rows; sizes are checked in full.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from photo2cad.indexer import layout
from photo2cad.indexer.npy_rows import read_npy_rows
from photo2cad.indexer.version import open_index
from photo2cad.shapes.meshes import file_checksum

SAMPLE_ROWS = 2000


def sample_rows(count: int, most: int = SAMPLE_ROWS) -> np.ndarray:
    """Evenly spread rows, first and last included: all of them up to `most`."""
    return (
        np.unique(np.linspace(0, count - 1, num=min(count, most)).round().astype(np.int64))
        if count
        else np.zeros(0, np.int64)
    )


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
    if index.vector_search.indexed != count:
        problems.append(f"the FAISS index holds {index.vector_search.indexed} vectors, the manifest {count} shapes")
    if problems:  # the checks below index the arrays by the manifest's rows
        return problems
    sample = sample_rows(count)
    # Read, not indexed through the memory map, which would map far more than the sample (see npy_rows).
    norms = np.linalg.norm(read_npy_rows(index.directory / layout.VECTORS, sample).astype(np.float32), axis=1)
    if count and not np.allclose(norms, 1.0, atol=1e-3):
        problems.append("shape vectors are not unit length")
    missing = [
        manifest.shapes[row].shape_id
        for row in sample
        if not (index.directory / manifest.shapes[row].thumbnail).is_file()
    ]
    if missing:
        problems.append(f"{len(missing)} thumbnails missing, e.g. {missing[:3]}")
    if problems:
        return problems
    if count and manifest.index_kind == "exact":
        probes = sample_rows(count, 50)
        _, top = index.vector_search.search(read_npy_rows(index.directory / layout.VECTORS, probes), 1)
        wrong = int((top[:, 0] != probes).sum())
        # Identical meshes give identical vectors; only a clear majority of misses means a broken index.
        if wrong > len(probes) // 2:
            problems.append(f"self-search misses {wrong} of {len(probes)} shapes")
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
