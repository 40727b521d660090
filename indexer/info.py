"""What `photo2cad index info` prints: how the current version was made and what it holds."""

from __future__ import annotations

from pathlib import Path

import torch

from photo2cad.indexer.vector_search import gpu_available
from photo2cad.indexer.version import open_index


def describe_index(root: Path) -> dict[str, object]:
    manifest = open_index(root).manifest
    return {
        "version": manifest.version,
        "created_at": manifest.created_at.isoformat(),
        "pool": manifest.pool_root,
        "shapes": manifest.counts.shapes,
        "failed": manifest.counts.failed,
        "views_per_shape": manifest.render.num_views,
        "categories": manifest.shapes.category_counts(),
        "index": manifest.index_kind,
        "index_params": manifest.index_params,
        "approximate_recall_at_10": manifest.approximate_recall_at_10,
        "max_faces": manifest.max_faces,
        "embedding_dim": manifest.embedding_dim,
        "weights": manifest.weights.model_dump(mode="json"),
        "render": manifest.render.model_dump(),
        "gpu_faiss_available": gpu_available(),
        "torch_cuda_available": torch.cuda.is_available(),
    }
