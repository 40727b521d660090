"""The two kinds of `train amvml` epoch, side by side: the frozen-backbone warm-up and the end-to-end epoch.

Warm-up (`warmup.py` has its loss): Enc1/Enc3 frozen, each photo ranked against every shape's cached features.
End to end (the paper's recipe): real photos (anchors) against their ground-truth shape's grey views (positives)
and every other shape of the batch plus a few extra shapes of the same categories (negatives); auxiliary category
and mask losses; an InfoNCE term against every shape's (memory-bank) vector; and, when a TSM is given, the hard
triplets: the ground-truth shape textured with a random code (positive) against another shape textured with the
anchor photo's own code (negative), so only geometry can tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from photo2cad.device import autocast
from photo2cad.models import AMVML, TextureSynthesisModule
from photo2cad.models.datasets.photos import PhotoSample
from photo2cad.models.embedding import views_to_tensor
from photo2cad.models.training.config import AMVMLTrainConfig
from photo2cad.models.training.losses import (
    batch_triplet_loss,
    masked_category_loss,
    masked_mask_loss,
    negative_log_weights,
    triplet_loss,
)
from photo2cad.models.training.views import ShapeViews
from photo2cad.models.training.warmup import freeze_backbone_statistics, pool_ranking_loss


@dataclass(frozen=True)
class EpochInputs:
    """What every epoch of one run reads."""

    loader: DataLoader[PhotoSample]
    views: ShapeViews
    category_of_row: np.ndarray  # (N,) category index of each shape row; -1 unknown
    photographed_rows: np.ndarray  # (N,) bool: the shape has training photos
    source_of_row: np.ndarray  # (N,) int: which source of a merged dataset the shape comes from
    config: AMVMLTrainConfig
    device: torch.device
    progress: bool


def warmup_epoch(
    model: AMVML, inputs: EpochInputs, pooled_views: torch.Tensor, optimiser: torch.optim.Optimizer, description: str
) -> dict[str, float]:
    """One pass over the samples, each step ranking its photos against the whole pool; mean loss terms."""
    config = inputs.config
    category_rows = torch.from_numpy(inputs.category_of_row).to(inputs.device)
    photographed = torch.from_numpy(inputs.photographed_rows).to(inputs.device)
    sources = torch.from_numpy(inputs.source_of_row).to(inputs.device)
    freeze_backbone_statistics(model)
    sums: dict[str, float] = {}
    steps = 0
    for batch in tqdm(inputs.loader, desc=description, disable=not inputs.progress, leave=False):
        losses = pool_ranking_loss(model, batch, pooled_views, category_rows, config, photographed, sources)
        optimiser.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimiser.step()
        steps += 1
        for name, value in losses.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach())
    return {f"loss_{k}": v / max(steps, 1) for k, v in sums.items()}


def end_to_end_epoch(
    model: AMVML,
    inputs: EpochInputs,
    optimiser: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    bank: torch.Tensor | None,
    tsm: TextureSynthesisModule | None,
    rng: np.random.Generator,
    description: str,
) -> dict[str, float]:
    """One pass over the samples with every layer learning; `bank` (N, D) is refreshed with the positives' fresh
    vectors as they come. Returns the mean loss terms."""
    config, device, views = inputs.config, inputs.device, inputs.views
    category_of_row = inputs.category_of_row
    num_views = views.grey.shape[1]
    if config.freeze_batchnorm:
        freeze_backbone_statistics(model)  # batch statistics of 16 photos would overwrite the ImageNet ones
    else:
        model.train()
    photographed = torch.from_numpy(inputs.photographed_rows).to(device)
    sources = torch.from_numpy(inputs.source_of_row).to(device)

    def bank_log_weights(batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The warm-up's weights of the negatives: real photos count the shapes nobody photographed less."""
        return negative_log_weights(
            batch["is_photo"].to(device),
            batch["shape_row"].to(device),
            config.unphotographed_weight,
            photographed,
            sources,
        )

    sums: dict[str, float] = {}
    steps = 0
    for batch in tqdm(inputs.loader, desc=description, disable=not inputs.progress, leave=False):
        rows = batch["shape_row"].numpy()
        candidates = np.concatenate([rows, _extra_negatives(rng, rows, category_of_row, config.extra_negatives)])
        view_ids = np.stack(
            [rng.choice(num_views, size=min(config.train_views, num_views), replace=False) for _ in candidates]
        )
        with autocast(device):
            photos = batch["photo"].to(device)
            photo_out = model.embed_photo(photos)
            chosen_views = torch.from_numpy(views.grey[candidates[:, None], view_ids]).to(device)
            shape_out = model.embed_views(views_to_tensor(chosen_views))
            same = torch.from_numpy(rows[:, None] == candidates[None, :]).to(device)
            same.fill_diagonal_(False)
            losses = {
                "triplet": batch_triplet_loss(photo_out.embedding, shape_out.embedding, same, config.margin),
                "category": masked_category_loss(photo_out.category_logits, batch["category"].to(device))
                + masked_category_loss(
                    shape_out.category_logits, torch.from_numpy(category_of_row[candidates]).to(device)
                ),
                "bank": bank_infonce(
                    photo_out.embedding, shape_out.embedding[: len(rows)], bank, rows, config, bank_log_weights(batch)
                )
                if bank is not None
                else torch.zeros((), device=device),
                "mask": masked_mask_loss(photo_out.mask_logits, batch["mask"].to(device), batch["has_mask"].to(device)),
            }
            if tsm is not None:
                positive, negative, textured_mask_logits, textured_masks = _hard_triplets(
                    model, tsm, views, photos, rows, category_of_row, rng, device
                )
                losses["tsm_triplet"] = triplet_loss(photo_out.embedding, positive, negative, config.margin)
                losses["mask"] = losses["mask"] + F.binary_cross_entropy_with_logits(
                    textured_mask_logits, textured_masks
                )
            total = (
                losses["triplet"]
                + config.bank_weight * losses["bank"]
                + config.category_weight * losses["category"]
                + config.mask_weight * losses["mask"]
                + config.tsm_weight * losses.get("tsm_triplet", torch.zeros((), device=device))
            )
        optimiser.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(optimiser)
        scaler.update()
        if bank is not None:
            bank[torch.from_numpy(rows).to(device)] = F.normalize(
                shape_out.embedding[: len(rows)].detach().float(), dim=1
            )
        steps += 1
        for name, value in [*losses.items(), ("total", total)]:
            sums[name] = sums.get(name, 0.0) + float(value.detach())
    return {f"loss_{k}": v / max(steps, 1) for k, v in sums.items()}


def bank_infonce(
    photos: torch.Tensor,
    positives: torch.Tensor,
    bank: torch.Tensor,
    rows: np.ndarray,
    config: AMVMLTrainConfig,
    log_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE of each photo against every shape: the bank's (detached) vectors, its own shape's fresh one; the
    negatives weighted as `negative_log_weights` says (the warm-up's weights)."""
    index = torch.from_numpy(rows).to(photos.device)
    # In float32: autocast would make the product half precision while the fresh scores stay float32 (a GPU run
    # failed on scatter's dtype check), and 0.1-temperature logits deserve the precision.
    with torch.autocast(photos.device.type, enabled=False):
        photos = photos.float()
        logits = photos @ bank.T.float()
        fresh = (photos * positives.float()).sum(dim=1)
        logits = logits.scatter(1, index[:, None], fresh[:, None]) / config.temperature
        if log_weights is not None:
            logits = logits + log_weights
    return F.cross_entropy(logits, index)


def _extra_negatives(rng: np.random.Generator, anchors: np.ndarray, categories: np.ndarray, count: int) -> np.ndarray:
    """Shapes outside the batch, drawn from the anchors' categories first: the negatives that are hard to tell."""
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    outside = np.setdiff1d(np.arange(len(categories)), anchors)
    if len(outside) == 0:
        return np.zeros(0, dtype=np.int64)
    same_category = outside[np.isin(categories[outside], categories[anchors])]
    pool = same_category if len(same_category) >= count else outside
    return rng.choice(pool, size=min(count, len(pool)), replace=False)


def _other_shape(rng: np.random.Generator, row: int, categories: np.ndarray) -> int:
    """A different shape, of the same category when there is one: the hard negative."""
    others = np.flatnonzero(np.arange(len(categories)) != row)
    same = others[categories[others] == categories[row]]
    return int(rng.choice(same if len(same) else others))


def _hard_triplets(
    model: AMVML,
    tsm: TextureSynthesisModule,
    views: ShapeViews,
    photos: torch.Tensor,
    rows: np.ndarray,
    categories: np.ndarray,
    rng: np.random.Generator,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(positive, negative) textured renders through the photo branch, and their mask logits and masks."""
    assert views.normals is not None
    view_ids = rng.integers(0, views.normals.shape[1], size=len(rows))
    negatives = np.array([_other_shape(rng, row, categories) for row in rows])
    synth = tsm.config.image_size

    def normal_maps(shape_rows: np.ndarray) -> torch.Tensor:
        assert views.normals is not None
        chosen = torch.from_numpy(views.normals[shape_rows, view_ids]).to(device)
        return chosen.permute(0, 3, 1, 2).float() / 127.5 - 1

    category = torch.from_numpy(np.maximum(categories[rows], 0)).to(device) if tsm.config.num_categories else None
    with torch.no_grad():
        photo_code = tsm.texture_code(F.interpolate(photos * 2 - 1, size=(synth, synth), mode="bilinear"))
        positive = tsm.synthesize(normal_maps(rows), tsm.sample_z(len(rows), device), category)
        negative = tsm.synthesize(normal_maps(negatives), photo_code, category)
    size = model.config.image_size
    textured = F.interpolate(torch.cat([positive, negative]) * 0.5 + 0.5, size=(size, size), mode="bilinear")
    out = model.embed_photo(textured.clamp(0, 1))
    masks = np.concatenate([views.masks[rows, view_ids], views.masks[negatives, view_ids]])
    mask_tensor = F.interpolate(torch.from_numpy(masks).to(device).float().unsqueeze(1), size=(size, size))
    half = len(rows)
    return out.embedding[:half], out.embedding[half:], out.mask_logits, mask_tensor
