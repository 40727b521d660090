"""Embedding a pool and a set of photos, ranking, and the retrieval metrics of the paper."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from photo2cad.models import AMVML
from photo2cad.models.datasets.photos import PhotoDataset, collate
from photo2cad.models.datasets.records import QueryRecord


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    return torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else contextlib.nullcontext()


def _view_batches(grey: np.ndarray, device: torch.device, batch_shapes: int) -> Iterator[torch.Tensor]:
    """(N, V, S, S, 3) uint8 grey views -> (B, V, 3, S, S) float batches in [0, 1] on `device`."""
    for start in range(0, len(grey), batch_shapes):
        yield torch.from_numpy(grey[start : start + batch_shapes]).to(device).permute(0, 1, 4, 2, 3).float() / 255


@torch.inference_mode()
def embed_view_sets(model: AMVML, grey: np.ndarray, device: torch.device, batch_shapes: int = 4) -> np.ndarray:
    """(N, V, S, S, 3) uint8 grey views -> (N, D) shape vectors."""
    model.eval()
    vectors = []
    for chunk in _view_batches(grey, device, batch_shapes):
        with _autocast(device):
            vectors.append(model.embed_views(chunk).embedding.float().cpu())
    return torch.cat(vectors).numpy()


@torch.no_grad()  # not inference_mode: the frozen-backbone warm-up feeds these features to the heads' autograd graph
def pooled_view_features(model: AMVML, grey: np.ndarray, device: torch.device, batch_shapes: int = 4) -> torch.Tensor:
    """(N, V, S, S, 3) uint8 grey views -> (N, V, C) pooled C5 features of the view branch, on `device`."""
    model.eval()
    chunks = []
    for chunk in _view_batches(grey, device, batch_shapes):
        pooled = model.view_features(chunk.flatten(0, 1)).mean(dim=(2, 3))
        chunks.append(pooled.view(*chunk.shape[:2], -1).float())
    return torch.cat(chunks)


@torch.inference_mode()
def embed_queries(
    model: AMVML,
    queries: Sequence[QueryRecord],
    shape_rows: dict[str, int],
    categories: Sequence[str],
    device: torch.device,
    batch_size: int = 16,
    use_masks: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Photos -> (Q, D) vectors and (Q,) predicted category indices (-1 without a category head)."""
    model.eval()
    data = PhotoDataset(queries, shape_rows, categories, model.config.image_size, augment=False)
    loader = DataLoader(data, batch_size=batch_size, collate_fn=collate)
    vectors, predicted = [], []
    for batch in loader:
        mask = batch["mask"].to(device) if use_masks and bool(batch["has_mask"].all()) else None
        with _autocast(device):
            out = model.embed_photo(batch["photo"].to(device), mask=mask)
        vectors.append(out.embedding.float().cpu())
        logits = out.category_logits.float().cpu()
        predicted.append(logits.argmax(1) if logits.shape[1] else torch.full((len(logits),), -1))
    return torch.cat(vectors).numpy(), torch.cat(predicted).numpy()


@dataclass(frozen=True)
class Ranking:
    """Per query: the rank (0 = first) of the ground truth and the rows of the top 10."""

    gt_rank: np.ndarray  # (Q,)
    top: np.ndarray  # (Q, 10), -1 padded


def rank_queries(
    query_vectors: np.ndarray,
    shape_vectors: np.ndarray,
    gt_rows: np.ndarray,
    shape_categories: Sequence[str | None],
    query_categories: Sequence[str | None] | None = None,
) -> Ranking:
    """Rank all shapes per query; with `query_categories`, only the shapes of that category (Pix3D's protocol)."""
    similarity = query_vectors @ shape_vectors.T
    if query_categories is not None:
        categories = np.array([c or "" for c in shape_categories])
        allowed = categories[None, :] == np.array([c or "" for c in query_categories])[:, None]
        similarity = np.where(allowed, similarity, -np.inf)
    order = np.argsort(-similarity, axis=1, kind="stable")
    gt_rank = np.argmax(order == gt_rows[:, None], axis=1)
    top = order[:, :10]
    if query_categories is not None:
        top = np.where(np.take_along_axis(similarity, top, axis=1) == -np.inf, -1, top)
    return Ranking(gt_rank=gt_rank, top=top)


@dataclass(frozen=True)
class RetrievalMetrics:
    count: int
    top1: float
    top10: float
    category_accuracy: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "top1": self.top1,
            "top10": self.top10,
            "category_accuracy": self.category_accuracy,
        }


def retrieval_metrics(
    ranking: Ranking, first_result_categories: Sequence[str | None], gt_categories: Sequence[str | None]
) -> RetrievalMetrics:
    count = len(ranking.gt_rank)
    if count == 0:
        return RetrievalMetrics(0, 0.0, 0.0, None)
    known = [(f, g) for f, g in zip(first_result_categories, gt_categories, strict=True) if g is not None]
    return RetrievalMetrics(
        count=count,
        top1=float(np.mean(ranking.gt_rank == 0)),
        top10=float(np.mean(ranking.gt_rank < 10)),
        category_accuracy=float(np.mean([f == g for f, g in known])) if known else None,
    )
