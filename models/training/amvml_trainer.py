"""`photo2cad train amvml`: triplet metric learning of photos against multi-view renders.

Every step: real photos (anchors) against their ground-truth shape's grey views (positives) and every other shape
of the batch plus a few extra shapes of the same categories (negatives); auxiliary category and mask losses; and,
when switched on, the TSM hard triplets: the ground-truth shape textured with a random code (positive) against
another shape textured with the anchor photo's own code (negative), so only geometry can tell them apart.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from tqdm import tqdm

from photo2cad.models import AMVML, AMVMLConfig, TextureSynthesisModule
from photo2cad.models.datasets.photos import PhotoDataset, PhotoSample, collate, photo_augmentation
from photo2cad.models.datasets.records import RetrievalDataset
from photo2cad.models.evaluation.retrieval import (
    embed_queries,
    embed_view_sets,
    pooled_view_features,
    rank_queries,
    retrieval_metrics,
)
from photo2cad.models.training.config import AMVMLTrainConfig
from photo2cad.models.training.curves import plot_curves
from photo2cad.models.training.losses import batch_triplet_loss, masked_category_loss, masked_mask_loss, triplet_loss
from photo2cad.models.training.textured_anchors import TexturedAnchors, anchor_cameras, render_textured_views
from photo2cad.models.training.views import ShapeViews, render_views
from photo2cad.models.training.warmup import freeze_backbone_statistics, frozen_backbone, pool_ranking_loss
from photo2cad.shapes.settings import RenderSettings
from photo2cad.weights.checkpoint import header_for, load_amvml, load_tsm, save_checkpoint

log = logging.getLogger(__name__)

LAST = "amvml-last.safetensors"
STATE = "trainer-state.pt"


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    epochs_run: int
    history: list[dict[str, float]]


def _views_tensor(views: ShapeViews, rows: np.ndarray, view_ids: np.ndarray, device: torch.device) -> torch.Tensor:
    chosen = views.grey[rows[:, None], view_ids]  # (B, V', S, S, 3)
    return torch.from_numpy(chosen).to(device).permute(0, 1, 4, 2, 3).float().div_(255.0)


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


def bank_infonce(
    photos: torch.Tensor, positives: torch.Tensor, bank: torch.Tensor, rows: np.ndarray, config: AMVMLTrainConfig
) -> torch.Tensor:
    """InfoNCE of each photo against every shape: the bank's (detached) vectors, its own shape's fresh one."""
    logits = photos @ bank.T.to(photos.dtype)
    index = torch.from_numpy(rows).to(photos.device)
    fresh = (photos * positives).sum(dim=1)
    logits = logits.scatter(1, index[:, None], fresh[:, None])
    return F.cross_entropy(logits / config.temperature, index)


def evaluate_split(
    model: AMVML,
    dataset: RetrievalDataset,
    views: ShapeViews,
    split: str,
    device: torch.device,
    within_category: bool = False,
    shape_vectors: np.ndarray | None = None,
) -> dict[str, float | int | None]:
    shape_rows = {sid: i for i, sid in enumerate(views.shape_ids)}
    queries = [q for q in dataset.split(split) if q.shape_id in shape_rows]
    if not queries:
        return {"count": 0}
    categories = dataset.categories()
    if shape_vectors is None:
        shape_vectors = embed_view_sets(model, views.grey, device)
    query_vectors, _ = embed_queries(model, queries, shape_rows, categories, device)
    shape_categories = [dataset.shape(sid).category for sid in views.shape_ids]
    ranking = rank_queries(
        query_vectors,
        shape_vectors,
        np.array([shape_rows[q.shape_id] for q in queries]),
        shape_categories,
        [q.category for q in queries] if within_category else None,
    )
    first = [shape_categories[row] for row in ranking.top[:, 0]]
    return retrieval_metrics(ranking, first, [q.category for q in queries]).as_dict()


def check_request(
    model_config: AMVMLConfig, config: AMVMLTrainConfig, render: RenderSettings, tsm_weights: Path | None
) -> None:
    """Raises ValueError, with what to change, for settings that cannot train together."""
    if render.embed_size != model_config.image_size:
        raise ValueError(f"renderer makes {render.embed_size} px views, the network expects {model_config.image_size}")
    if not config.train_on_photos and not config.textured_anchors:
        raise ValueError("without the photos there is nothing to train on: add --textured-anchors")
    if config.tsm_triplets and tsm_weights is None:
        raise ValueError("tsm_triplets needs TSM weights (train them with `photo2cad train tsm`)")
    if config.tsm_triplets and config.epochs <= config.warmup_epochs:
        raise ValueError(
            f"the TSM hard triplets act in end-to-end epochs, and all {config.epochs} epochs are warm-up ones: "
            f"ask for more epochs than warm-up epochs (e.g. --epochs {config.warmup_epochs + 10})"
        )


def train_amvml(
    dataset: RetrievalDataset,
    out_dir: Path,
    model_config: AMVMLConfig,
    config: AMVMLTrainConfig,
    render: RenderSettings,
    cache_dir: Path,
    device: torch.device,
    tsm_weights: Path | None = None,
    init_weights: Path | None = None,
    resume: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Train on the dataset's train split (validating on val); the test split is never read here."""
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    rng = np.random.default_rng(config.seed)
    check_request(model_config, config, render, tsm_weights)

    categories = dataset.categories()
    views = render_views(dataset.shapes, render, cache_dir, with_normals=config.tsm_triplets, progress=progress)
    shape_rows = {sid: i for i, sid in enumerate(views.shape_ids)}
    category_of_row = np.array(
        [categories.index(c) if (c := dataset.shape(sid).category) in categories else -1 for sid in views.shape_ids]
    )
    train = PhotoDataset(
        dataset.split("train"),
        shape_rows,
        categories,
        model_config.image_size,
        augment=True,
        grayscale_probability=config.grayscale_probability,
    )
    if len(train) == 0 and config.train_on_photos:
        raise ValueError(f"{dataset.name} has no training photos (--textured-anchors --no-photos trains without)")
    samples: Dataset[PhotoSample] = train
    if config.textured_anchors:
        textured = render_textured_views(dataset.shapes, anchor_cameras(render), cache_dir, progress=progress)
        anchors = TexturedAnchors(
            textured,
            shape_rows,
            category_of_row.tolist(),
            [query.image for query in train.queries],
            model_config.image_size,
            photo_augmentation(model_config.image_size, config.grayscale_probability),
        )
        if config.train_on_photos:
            log.info("%d textured anchors join %d training photos each epoch", len(anchors), len(train))
            samples = ConcatDataset([train, anchors])
        else:
            log.info("%d textured anchors each epoch; the photos only lend their backgrounds", len(anchors))
            samples = anchors
    loader = DataLoader(
        samples,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=len(samples) > config.batch_size,  # type: ignore[arg-type]
        collate_fn=collate,
        num_workers=config.num_workers,
    )

    if init_weights is not None:
        model, _ = load_amvml(init_weights, device)
    else:
        model = AMVML(model_config).to(device)
    tsm = load_tsm(tsm_weights, device)[0].eval() if config.tsm_triplets and tsm_weights else None
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    history: list[dict[str, float]] = []
    start_epoch = 0
    optimiser_state = None
    state_path = out_dir / STATE
    if resume and state_path.is_file() and (out_dir / LAST).is_file():
        state = torch.load(state_path, map_location=device, weights_only=False)
        model, _ = load_amvml(out_dir / LAST, device)
        start_epoch, history = state["epoch"], state["history"]
        if _phase(start_epoch, config) == state.get("phase", "finetune"):
            optimiser_state = state["optimiser"]
        log.info("resuming from epoch %d of %s", start_epoch, out_dir)

    bank: torch.Tensor | None = None
    category_rows = torch.from_numpy(category_of_row).to(device)
    pooled_views: torch.Tensor | None = None
    optimiser: torch.optim.Optimizer | None = None
    for epoch in range(start_epoch, config.epochs):
        phase = _phase(epoch, config)
        if phase == "warmup":
            if pooled_views is None:
                log.info(
                    "warm-up: backbone frozen; caching the pooled features of %d views",
                    views.grey.shape[0] * views.grey.shape[1],
                )
                pooled_views = pooled_view_features(model, views.grey, device)
            started = time.perf_counter()
            with frozen_backbone(model, train_photo_branch=config.photo_branch_lr > 0) as trainable:
                if optimiser is None:
                    optimiser = _optimiser(_warmup_groups(model, trainable, config), config, optimiser_state)
                record = _warmup_epoch(model, loader, pooled_views, category_rows, optimiser, config, epoch, progress)
            record["seconds"] = time.perf_counter() - started
            with torch.inference_mode():
                model.eval()
                shape_vectors = model.shapes_from_pooled(pooled_views).embedding.float().cpu().numpy()
            if _phase(epoch + 1, config) != phase:
                optimiser, optimiser_state = None, None
            _finish_epoch(model, dataset, views, device, config, epoch, record, history, shape_vectors)
            _save(out_dir, model, dataset, render, config, categories, history, tsm_weights, optimiser, epoch, phase)
            continue
        if optimiser is None:
            optimiser = _optimiser([{"params": list(model.parameters()), "lr": config.lr}], config, optimiser_state)
        if bank is None and config.bank_weight:
            # Every shape's current vector: the InfoNCE term ranks each photo against the whole pool.
            bank = torch.from_numpy(embed_view_sets(model, views.grey, device)).to(device)
        if config.freeze_batchnorm:
            freeze_backbone_statistics(model)  # batch statistics of 16 photos would overwrite the ImageNet ones
        else:
            model.train()
        sums: dict[str, float] = {}
        steps = 0
        started = time.perf_counter()
        for batch in tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False):
            rows = batch["shape_row"].numpy()
            extra = _extra_negatives(rng, rows, category_of_row, config.extra_negatives)
            candidates = np.concatenate([rows, extra])
            view_ids = np.stack(
                [
                    rng.choice(render.num_views, size=min(config.train_views, render.num_views), replace=False)
                    for _ in candidates
                ]
            )
            autocast = (
                torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda" else contextlib.nullcontext()
            )
            with autocast:
                photos = batch["photo"].to(device)
                photo_out = model.embed_photo(photos)
                shape_out = model.embed_views(_views_tensor(views, candidates, view_ids, device))
                same = torch.from_numpy(rows[:, None] == candidates[None, :]).to(device)
                same.fill_diagonal_(False)
                losses = {
                    "triplet": batch_triplet_loss(photo_out.embedding, shape_out.embedding, same, config.margin),
                    "category": masked_category_loss(photo_out.category_logits, batch["category"].to(device))
                    + masked_category_loss(
                        shape_out.category_logits, torch.from_numpy(category_of_row[candidates]).to(device)
                    ),
                    "bank": bank_infonce(photo_out.embedding, shape_out.embedding[: len(rows)], bank, rows, config)
                    if bank is not None
                    else torch.zeros((), device=device),
                    "mask": masked_mask_loss(
                        photo_out.mask_logits, batch["mask"].to(device), batch["has_mask"].to(device)
                    ),
                }
                if tsm is not None:
                    positive, negative, textured_masks_logits, textured_masks = _hard_triplets(
                        model, tsm, views, photos, rows, category_of_row, rng, device
                    )
                    losses["tsm_triplet"] = triplet_loss(photo_out.embedding, positive, negative, config.margin)
                    losses["mask"] = losses["mask"] + F.binary_cross_entropy_with_logits(
                        textured_masks_logits, textured_masks
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
        losses_record = {f"loss_{k}": v / max(steps, 1) for k, v in sums.items()}
        losses_record["seconds"] = time.perf_counter() - started
        bank_vectors = None
        if bank is not None:
            bank_vectors = embed_view_sets(model, views.grey, device)
            bank = torch.from_numpy(bank_vectors).to(device)
        _finish_epoch(model, dataset, views, device, config, epoch, losses_record, history, bank_vectors)
        _save(out_dir, model, dataset, render, config, categories, history, tsm_weights, optimiser, epoch, phase)
    return TrainResult(out_dir / LAST, len(history), history)


def _phase(epoch: int, config: AMVMLTrainConfig) -> str:
    return "warmup" if epoch < config.warmup_epochs else "finetune"


def _optimiser(
    groups: list[dict[str, Any]], config: AMVMLTrainConfig, state: dict[str, Any] | None
) -> torch.optim.Optimizer:
    """AdamW over the non-empty parameter groups, continuing from `state` when resuming."""
    optimiser = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=config.weight_decay)
    if state is not None:
        optimiser.load_state_dict(state)
    return optimiser


def _warmup_groups(model: AMVML, trainable: list[torch.nn.Parameter], config: AMVMLTrainConfig) -> list[dict[str, Any]]:
    """The heads at the warm-up rate; the photo branch, when it trains, at its own."""
    photo_branch = {id(p) for p in model.enc2.parameters()}
    return [
        {"params": [p for p in trainable if id(p) not in photo_branch], "lr": config.warmup_lr},
        {"params": [p for p in trainable if id(p) in photo_branch], "lr": config.photo_branch_lr},
    ]


def _warmup_epoch(
    model: AMVML,
    loader: DataLoader[PhotoSample],
    pooled_views: torch.Tensor,
    category_rows: torch.Tensor,
    optimiser: torch.optim.Optimizer,
    config: AMVMLTrainConfig,
    epoch: int,
    progress: bool,
) -> dict[str, float]:
    freeze_backbone_statistics(model)
    sums: dict[str, float] = {}
    steps = 0
    for batch in tqdm(loader, desc=f"warm-up {epoch + 1}/{config.epochs}", disable=not progress, leave=False):
        losses = pool_ranking_loss(
            model, batch, pooled_views, category_rows, config.temperature, config.category_weight, config.mask_weight
        )
        optimiser.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimiser.step()
        steps += 1
        for name, value in losses.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach())
    return {f"loss_{k}": v / max(steps, 1) for k, v in sums.items()}


def _finish_epoch(
    model: AMVML,
    dataset: RetrievalDataset,
    views: ShapeViews,
    device: torch.device,
    config: AMVMLTrainConfig,
    epoch: int,
    record: dict[str, float],
    history: list[dict[str, float]],
    shape_vectors: np.ndarray | None,
) -> None:
    record["epoch"] = epoch + 1
    if config.validate_every and (epoch + 1) % config.validate_every == 0 and dataset.split("val"):
        metrics = evaluate_split(model, dataset, views, "val", device, shape_vectors=shape_vectors)
        record.update({f"val_{k}": float(v) for k, v in metrics.items() if v is not None})
    history.append(record)
    log.info("epoch %d: %s", epoch + 1, json.dumps({k: round(v, 4) for k, v in record.items()}))


def _save(
    out_dir: Path,
    model: AMVML,
    dataset: RetrievalDataset,
    render: RenderSettings,
    config: AMVMLTrainConfig,
    categories: tuple[str, ...] | list[str],
    history: list[dict[str, float]],
    tsm_weights: Path | None,
    optimiser: torch.optim.Optimizer | None,
    epoch: int,
    phase: str,
) -> None:
    """The checkpoint (its header says how it was trained) and what resuming needs, after every epoch."""
    header = header_for(
        model,
        training_data=dataset.name,
        renderer=render.model_dump(),
        notes={
            "train_config": config.model_dump(),
            "categories": list(categories),
            "history": history,
            "tsm_weights": str(tsm_weights) if tsm_weights else None,
        },
    )
    save_checkpoint(out_dir / LAST, model, header)
    state = {"optimiser": optimiser.state_dict() if optimiser else None, "epoch": epoch + 1, "history": history}
    torch.save({**state, "phase": phase}, out_dir / STATE)
    (out_dir / "history.json").write_text(json.dumps(history, indent=2))
    plot_curves(history, out_dir / "loss_curve.png")
