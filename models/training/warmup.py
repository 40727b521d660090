"""The frozen-backbone warm-up of `train amvml`: the heads learn, each photo ranked against the whole pool.

With Enc1 and Enc3 frozen, every view's pooled C5 feature is fixed, so it is computed once per run and each step
scores its photos against every shape of the pool (fused and query-attended) for the price of a few matrix products.
The photos still pass through the backbone (they are augmented anew each step); with the photo branch Enc2 frozen as
well there is no backward pass through the backbone at all, and with it trainable (`photo_branch_lr`) the photo
branch adapts to the fixed feature space of the renders. On a CPU this reaches in minutes what end-to-end fine-tuning
reaches in hours, and it leaves the heads aligned for fine-tuning to start from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from photo2cad.models import AMVML
from photo2cad.models.training.config import AMVMLTrainConfig
from photo2cad.models.training.losses import masked_category_loss, masked_mask_loss, negative_log_weights


def backbone_modules(model: AMVML) -> tuple[nn.Module, ...]:
    return (model.enc1, model.enc2, model.enc3)


@contextmanager
def frozen_backbone(model: AMVML, train_photo_branch: bool = False) -> Iterator[list[nn.Parameter]]:
    """Freezes Enc1 and Enc3 (what the cached view features depend on) and, unless `train_photo_branch`, Enc2 too;
    yields the parameters left to train. Batch-norm statistics stay put: see `freeze_backbone_statistics`."""
    modules = [model.enc1, model.enc3] + ([] if train_photo_branch else [model.enc2])
    frozen = [p for module in modules for p in module.parameters()]
    states = [p.requires_grad for p in frozen]
    for parameter in frozen:
        parameter.requires_grad_(False)
    try:
        yield [p for p in model.parameters() if p.requires_grad]
    finally:
        for parameter, state in zip(frozen, states, strict=True):
            parameter.requires_grad_(state)


def freeze_backbone_statistics(model: AMVML) -> None:
    """Heads in training mode, the backbone in evaluation mode: its batch-norm statistics stay put (and
    EfficientNet's drop-connect is off) while its weights may still learn."""
    model.train()
    for module in backbone_modules(model):
        module.eval()


def pool_ranking_loss(
    model: AMVML,
    batch: dict[str, torch.Tensor],
    pooled_views: torch.Tensor,
    categories_of_rows: torch.Tensor,
    config: AMVMLTrainConfig,
    photographed_rows: torch.Tensor | None = None,
    source_of_rows: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Every loss term of one warm-up step; "total" is their weighted sum.

    "pool": InfoNCE of each sample against every shape's fused vector; "rerank": the same over the query-attended
    scores (`AMVML.rerank_scores`), which teaches the per-view matching the service can re-rank with. Real photos
    (not anchors) count a shape as a negative config.unphotographed_weight times unless it is in `photographed_rows`
    (N,) and of the photo's own source (`source_of_rows`, (N,) ints: in a merge, another source's shapes are told
    apart by their style alone), and see the shape side frozen unless config.photos_move_shapes.
    """
    device = pooled_views.device
    photo = model.embed_photo(batch["photo"].to(device))
    shapes = model.shapes_from_pooled(pooled_views)
    targets = batch["shape_row"].to(device)
    is_photo = batch["is_photo"].to(device)
    frozen_for_photos = not config.photos_move_shapes and bool(is_photo.any())
    log_weights = negative_log_weights(
        is_photo, targets, config.unphotographed_weight, photographed_rows, source_of_rows
    )

    def logits(score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], shape_side: torch.Tensor) -> torch.Tensor:
        scores = score(photo.embedding, shape_side)
        if frozen_for_photos:
            scores = torch.where(is_photo[:, None], score(photo.embedding, shape_side.detach()), scores)
        scores = scores / config.temperature
        return scores if log_weights is None else scores + log_weights

    losses = {
        "pool": F.cross_entropy(logits(lambda q, s: q @ s.T, shapes.embedding), targets),
        "rerank": F.cross_entropy(logits(model.rerank_scores, shapes.view_embeddings), targets),
        "category": masked_category_loss(photo.category_logits, batch["category"].to(device))
        + masked_category_loss(shapes.category_logits, categories_of_rows),
        "mask": masked_mask_loss(photo.mask_logits, batch["mask"].to(device), batch["has_mask"].to(device)),
        "domain": domain_gap(photo.embedding, is_photo),
    }
    losses["total"] = (
        losses["pool"]
        + losses["rerank"]
        + config.category_weight * losses["category"]
        + config.mask_weight * losses["mask"]
        + config.domain_weight * losses["domain"]
    )
    return losses


def domain_gap(embeddings: torch.Tensor, is_photo: torch.Tensor) -> torch.Tensor:
    """Squared distance between the mean embedding of the real photos and that of the anchors (0 when the batch
    lacks either)."""
    if is_photo.all() or not is_photo.any():
        return embeddings.sum() * 0.0
    return (embeddings[is_photo].mean(dim=0) - embeddings[~is_photo].mean(dim=0)).pow(2).sum()
