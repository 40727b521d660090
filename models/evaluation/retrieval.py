"""Embedding a dataset's photos, ranking them against shape vectors, and the retrieval metrics of the paper."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from photo2cad.models import AMVML
from photo2cad.models.datasets.photos import PhotoDataset, collate
from photo2cad.models.datasets.records import QueryRecord
from photo2cad.models.embedding import embed_photos


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
    data = PhotoDataset(queries, shape_rows, categories, model.config.image_size, augment=False)
    vectors, predicted = [], []
    for batch in DataLoader(data, batch_size=batch_size, collate_fn=collate):
        masks = batch["mask"] if use_masks and bool(batch["has_mask"].all()) else None
        out = embed_photos(model, batch["photo"], device, masks)
        vectors.append(out.vectors)
        logits = out.category_logits
        predicted.append(logits.argmax(1) if logits.shape[1] else np.full(len(logits), -1))
    return np.concatenate(vectors), np.concatenate(predicted)


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
