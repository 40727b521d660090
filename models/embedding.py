"""How shapes and photos are embedded: the one path the indexer, evaluation, training and the service share.

grey views (N, V, S, S, 3) uint8 -> views_to_tensor -> AMVML.embed_views, in batches, under autocast
    (or the same network on ONNX Runtime, models/onnx_views.py, when the caller passes its engine: a CPU index build)
photos (B, 3, S, S) in [0, 1] (preprocess.photo_to_tensor) -> AMVML.embed_photo, under autocast
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from photo2cad.device import autocast
from photo2cad.models.amvml import AMVML, category_slots, with_shape_categories

if TYPE_CHECKING:
    from photo2cad.models.onnx_views import OnnxViewEngine


class ShapeVectors(NamedTuple):
    vectors: np.ndarray  # (N, vector_dim) float32, unit-length retrieval vectors (models/amvml.py)
    view_embeddings: np.ndarray  # (N, V, D) float32, each L2-normalised


class PhotoVectors(NamedTuple):
    vectors: np.ndarray  # (B, vector_dim) float32 retrieval vectors (unit length unless categories are weighted)
    category_logits: np.ndarray  # (B, C) float32; C = 0 without a category head


def views_to_tensor(views: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(..., H, W, 3) uint8 renders -> (..., 3, H, W) float in [0, 1], on the device the input is on."""
    pixels = torch.from_numpy(np.ascontiguousarray(views)) if isinstance(views, np.ndarray) else views
    return pixels.movedim(-1, -3).float().div_(255.0)


def view_batches(grey: np.ndarray, device: torch.device, batch_shapes: int) -> Iterator[torch.Tensor]:
    """(N, V, S, S, 3) uint8 grey views -> (B, V, 3, S, S) float batches in [0, 1] on `device`."""
    for start in range(0, len(grey), batch_shapes):
        yield views_to_tensor(torch.from_numpy(grey[start : start + batch_shapes]).to(device, non_blocking=True))


@torch.inference_mode()
def embed_view_sets(
    model: AMVML,
    grey: np.ndarray,
    device: torch.device,
    batch_shapes: int = 4,
    engine: OnnxViewEngine | None = None,
    categories: Sequence[str | None] | None = None,
) -> ShapeVectors:
    """(N, V, S, S, 3) uint8 grey views of shapes of `categories` -> shape vectors and view embeddings (the model is
    put in eval mode). The categories are needed when the model weights them (AMVMLConfig.category_weight).

    `engine` (models.onnx_views.onnx_view_engine, made from this model) runs the same network on ONNX Runtime: the
    same vectors within float rounding, about twice as fast on a CPU."""
    model.eval()
    if category_slots(model.config) and categories is None:
        raise ValueError("these weights score categories: embedding shapes needs their categories")
    if engine is not None:
        parts = [engine(grey[start : start + batch_shapes]) for start in range(0, len(grey), batch_shapes)]
        vectors = torch.from_numpy(np.concatenate([p[0] for p in parts]))
        view_embeddings = np.concatenate([p[1] for p in parts])
    else:
        chunks, view_chunks = [], []
        for chunk in view_batches(grey, device, batch_shapes):
            with autocast(device):
                out = model.embed_views(chunk)
            chunks.append(out.vector.float().cpu())
            view_chunks.append(out.view_embeddings.float().cpu())
        vectors, view_embeddings = torch.cat(chunks), torch.cat(view_chunks).numpy()
    vectors = with_shape_categories(model.config, vectors, categories or [])
    return ShapeVectors(vectors.numpy(), view_embeddings)


@torch.no_grad()  # not inference_mode: the trainer updates the bank in place as its shapes' embeddings move
def shape_embeddings(
    model: AMVML, grey: np.ndarray, device: torch.device, batch_shapes: int = 4
) -> tuple[torch.Tensor, np.ndarray]:
    """(N, V, S, S, 3) uint8 grey views of a training pool -> in one pass, (N, D) fused shape embeddings, unit
    length, on `device` (what the training losses compare photos with) and (N, vector_dim) retrieval vectors (the
    embedding with the prior, which the losses ignore: what validation ranks). Training weighs no categories."""
    model.eval()
    if category_slots(model.config):
        raise ValueError("training networks weigh no categories: the category term is set after training")
    embeddings, vectors = [], []
    for chunk in view_batches(grey, device, batch_shapes):
        with autocast(device):
            out = model.embed_views(chunk)
        embeddings.append(out.embedding.float())
        vectors.append(out.vector.float().cpu())
    return torch.cat(embeddings), torch.cat(vectors).numpy()


@torch.no_grad()  # not inference_mode: the frozen-backbone warm-up feeds these features to the heads' autograd graph
def pooled_view_features(model: AMVML, grey: np.ndarray, device: torch.device, batch_shapes: int = 4) -> torch.Tensor:
    """(N, V, S, S, 3) uint8 grey views -> (N, V, C) `AMVML.pooled_view_features`, on `device`."""
    model.eval()
    chunks = []
    for chunk in view_batches(grey, device, batch_shapes):
        pooled = model.pooled_view_features(chunk.flatten(0, 1))
        chunks.append(pooled.view(*chunk.shape[:2], -1).float())
    return torch.cat(chunks)


@torch.inference_mode()
def embed_photos(
    model: AMVML, photos: torch.Tensor, device: torch.device, masks: torch.Tensor | None = None
) -> PhotoVectors:
    """(B, 3, S, S) photos in [0, 1] -> their vectors; pooled under `masks` (B, 1, S, S) or the predicted mask."""
    model.eval()
    with autocast(device):
        out = model.embed_photo(
            photos.to(device, non_blocking=True), None if masks is None else masks.to(device, non_blocking=True)
        )
    return PhotoVectors(out.vector.float().cpu().numpy(), out.category_logits.float().cpu().numpy())
