"""What `photo2cad index info` prints: how the current version was made and what it holds."""

from __future__ import annotations

from pathlib import Path

import torch

from photo2cad.indexer.vector_search import gpu_available
from photo2cad.indexer.version import open_index


def describe_index(root: Path) -> dict[str, object]:
    manifest = open_index(root).manifest
    categories: dict[str, int] = {}
    for entry in manifest.shapes:
        categories[entry.category or "-"] = categories.get(entry.category or "-", 0) + 1
    return {
        "version": manifest.version,
        "created_at": manifest.created_at.isoformat(),
        "pool": manifest.pool_root,
        "shapes": manifest.counts.shapes,
        "failed": manifest.counts.failed,
        "views_per_shape": manifest.render.num_views,
        "categories": categories,
        "index": manifest.index_kind,
        "embedding_dim": manifest.embedding_dim,
        "weights": manifest.weights.model_dump(mode="json"),
        "render": manifest.render.model_dump(),
        "gpu_faiss_available": gpu_available(),
        "torch_cuda_available": torch.cuda.is_available(),
    }
