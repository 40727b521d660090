"""`photo2cad train amvml`: the run around the epochs (epochs.py): data, model, resume, validation, checkpoints.

The first `warmup_epochs` epochs train the heads on a frozen backbone; the rest train end to end (the paper's recipe,
where the TSM hard triplets act). Every epoch ends with a validation pass and a checkpoint whose header says how it
was trained.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from photo2cad.device import place_network
from photo2cad.errors import Photo2CadError
from photo2cad.heap import heap_kept_for_reuse
from photo2cad.models import AMVML, AMVMLConfig
from photo2cad.models.datasets.photos import PhotoDataset, PhotoSample, collate, photo_augmentation
from photo2cad.models.datasets.records import QueryRecord, RetrievalDataset
from photo2cad.models.embedding import embed_view_sets, pooled_view_features, shape_embeddings
from photo2cad.models.evaluation.retrieval import embed_queries, rank_queries, retrieval_metrics
from photo2cad.models.inference import folded_for_inference
from photo2cad.models.training.config import AMVMLTrainConfig
from photo2cad.models.training.curves import plot_curves
from photo2cad.models.training.epochs import EpochInputs, end_to_end_epoch, warmup_epoch
from photo2cad.models.training.reproducible import deterministic_algorithms, pin_cublas_workspace, training_machine
from photo2cad.models.training.textured_anchors import (
    TexturedAnchors,
    TexturedViews,
    TSMTextures,
    anchor_cameras,
    render_textured_views,
)
from photo2cad.models.training.views import ShapeViews, render_views
from photo2cad.models.training.warmup import frozen_backbone
from photo2cad.shapes.meshes import file_checksum
from photo2cad.shapes.settings import RenderSettings
from photo2cad.weights.checkpoint import header_for, load_amvml, load_tsm, save_checkpoint
from photo2cad.weights.pretrained import new_amvml

log = logging.getLogger(__name__)

LAST = "amvml-last.safetensors"
STATE = "trainer-state.pt"


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    epochs_run: int
    history: list[dict[str, float]]


@dataclass(frozen=True)
class SplitEmbedding:
    """A split's photos and the shapes they are ranked against, embedded."""

    queries: list[QueryRecord]
    query_vectors: np.ndarray  # (Q, D)
    shape_vectors: np.ndarray  # (N, D), the dataset's own shapes
    shape_categories: list[str | None]
    gt_rows: np.ndarray  # (Q,) row of each photo's shape


def embed_split(
    model: AMVML,
    dataset: RetrievalDataset,
    views: ShapeViews,
    split: str,
    device: torch.device,
    shape_vectors: np.ndarray | None = None,
) -> SplitEmbedding:
    """The split's photos and the dataset's own shapes (the rows of `views` it holds; `views` may hold more, e.g.
    when training mixes several datasets), embedded. `shape_vectors`, when given, are those of every row of views."""
    own = {shape.shape_id for shape in dataset.shapes}
    rows = np.array([i for i, sid in enumerate(views.shape_ids) if sid in own], dtype=np.int64)
    shape_ids = [views.shape_ids[i] for i in rows]
    shape_rows = {sid: i for i, sid in enumerate(shape_ids)}
    queries = [q for q in dataset.split(split) if q.shape_id in shape_rows]
    if shape_vectors is None:
        categories = [dataset.shape(sid).category for sid in shape_ids]
        shape_vectors = embed_view_sets(model, views.grey[rows], device, categories=categories).vectors
    else:
        shape_vectors = shape_vectors[rows]
    query_vectors = (
        embed_queries(model, queries, shape_rows, dataset.categories(), device)[0]
        if queries
        else np.zeros((0, shape_vectors.shape[1]), np.float32)
    )
    return SplitEmbedding(
        queries,
        query_vectors,
        shape_vectors,
        [dataset.shape(sid).category for sid in shape_ids],
        np.array([shape_rows[q.shape_id] for q in queries], dtype=np.int64),
    )


def evaluate_split(
    model: AMVML,
    dataset: RetrievalDataset,
    views: ShapeViews,
    split: str,
    device: torch.device,
    within_category: bool = False,
    shape_vectors: np.ndarray | None = None,
) -> dict[str, float | int | None]:
    """Top1@R, Top10@R and category accuracy of the split's photos against the dataset's own shapes."""
    return split_metrics(embed_split(model, dataset, views, split, device, shape_vectors), within_category)


def split_metrics(embedded: SplitEmbedding, within_category: bool = False) -> dict[str, float | int | None]:
    """Top1@R, Top10@R and category accuracy of an embedded split (`embed_split`)."""
    if not embedded.queries:
        return {"count": 0}
    ranking = rank_queries(
        embedded.query_vectors,
        embedded.shape_vectors,
        embedded.gt_rows,
        embedded.shape_categories,
        [q.category for q in embedded.queries] if within_category else None,
    )
    first = [embedded.shape_categories[row] for row in ranking.top[:, 0]]
    return retrieval_metrics(ranking, first, [q.category for q in embedded.queries]).as_dict()


class TrainingRequestError(Photo2CadError, ValueError):
    """Settings that cannot train together, or data with nothing to train on; the message says what to change."""


def check_request(
    model_config: AMVMLConfig, config: AMVMLTrainConfig, render: RenderSettings, tsm_weights: Path | None
) -> None:
    """Raises TrainingRequestError, with what to change, for settings that cannot train together."""
    if render.embed_size != model_config.image_size:
        raise TrainingRequestError(
            f"renderer makes {render.embed_size} px views, the network expects {model_config.image_size}"
        )
    if not config.train_on_photos and not config.textured_anchors:
        raise TrainingRequestError("without the photos there is nothing to train on: add --textured-anchors")
    if model_config.category_weight > 0:
        raise TrainingRequestError(
            "a category weight is given to a trained network, whose heads know their classes: train without it, "
            "then `photo2cad weights categories SRC OUT --weight W`"
        )
    if (config.tsm_triplets or "tsm" in config.anchor_looks) and tsm_weights is None:
        raise TrainingRequestError(
            "the TSM hard triplets and the tsm anchor look need TSM weights (train them with `photo2cad train tsm`)"
        )
    if config.tsm_triplets and config.epochs <= config.warmup_epochs:
        raise TrainingRequestError(
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
    validation: RetrievalDataset | None = None,
) -> TrainResult:
    """Train on the dataset's train split, validating after each epoch on the val split of `validation` (default:
    the dataset) against its own shapes; the test split is never read here."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pin_cublas_workspace(config.deterministic, device)
    machine = training_machine(device)  # every epoch's header records it; it does not change within a run
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    rng = np.random.default_rng(config.seed)
    check_request(model_config, config, render, tsm_weights)

    categories = dataset.categories()
    views = render_views(dataset.shapes, render, cache_dir, with_normals=config.tsm_triplets, progress=progress)
    category_of_row = np.array(
        [categories.index(c) if (c := dataset.shape(sid).category) in categories else -1 for sid in views.shape_ids]
    )
    textures = _tsm_textures(tsm_weights) if "tsm" in config.anchor_looks and tsm_weights else None
    # Read once: with end-to-end sources named, both loaders share the renders (about 1 GB for the bundled recipe).
    textured = (
        render_textured_views(
            dataset.shapes, anchor_cameras(render), cache_dir, config.anchor_looks, config.seed, textures, progress
        )
        if config.textured_anchors
        else None
    )
    loader = _training_loader(dataset, views, category_of_row, model_config, config, textured)
    end_to_end_loader = loader
    if config.end_to_end_sources and config.epochs > config.warmup_epochs:
        log.info("the end-to-end epochs read %s alone:", ", ".join(config.end_to_end_sources))
        end_to_end_loader = _training_loader(
            dataset, views, category_of_row, model_config, config, textured, config.end_to_end_sources
        )
    model, start_epoch, history, optimiser_state, random_state = _starting_point(
        out_dir, model_config, config, device, init_weights, resume
    )
    if random_state is not None:
        _restore_random_state(random_state, rng)
    tsm = load_tsm(tsm_weights, device)[0].eval() if config.tsm_triplets and tsm_weights else None
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    photographed = {query.shape_id for query in dataset.split("train")} if config.train_on_photos else set()
    photographed_rows = np.array([sid in photographed for sid in views.shape_ids])
    sources = [dataset.source_of(sid) for sid in views.shape_ids]
    source_of_row = np.array([sorted(set(sources)).index(source) for source in sources])
    inputs = EpochInputs(loader, views, category_of_row, photographed_rows, source_of_row, config, device, progress)
    end_to_end_inputs = replace(inputs, loader=end_to_end_loader)
    bank: torch.Tensor | None = None
    pooled_views: torch.Tensor | None = None
    optimiser: torch.optim.Optimizer | None = None
    with deterministic_algorithms(config.deterministic), heap_kept_for_reuse():
        for epoch in range(start_epoch, config.epochs):
            phase = _phase(epoch, config)
            description = f"{'warm-up' if phase == 'warmup' else 'epoch'} {epoch + 1}/{config.epochs}"
            started = time.perf_counter()
            if phase == "warmup":
                if pooled_views is None:
                    log.info(
                        "warm-up: backbone frozen; caching the pooled features of %d views",
                        views.grey.shape[0] * views.grey.shape[1],
                    )
                    pooled_views = pooled_view_features(folded_for_inference(model), views.grey, device)
                with frozen_backbone(model, train_photo_branch=config.photo_branch_lr > 0) as trainable:
                    if optimiser is None:
                        optimiser = _optimiser(_warmup_groups(model, trainable, config), config, optimiser_state)
                    record = warmup_epoch(model, inputs, pooled_views, optimiser, description)
                with torch.inference_mode():
                    model.eval()
                    shape_vectors = model.shapes_from_pooled(pooled_views).vector.float().cpu().numpy()
                if _phase(epoch + 1, config) != phase:
                    optimiser, optimiser_state = None, None
            else:
                if optimiser is None:
                    optimiser = _optimiser(
                        [{"params": list(model.parameters()), "lr": config.lr}], config, optimiser_state
                    )
                if bank is None and config.bank_weight:
                    # Every shape's current embedding: the InfoNCE term ranks each photo against the whole pool.
                    bank = shape_embeddings(folded_for_inference(model), views.grey, device)[0]
                record = end_to_end_epoch(model, end_to_end_inputs, optimiser, scaler, bank, tsm, rng, description)
                shape_vectors = None
                if bank is not None:  # one pass refreshes the bank and gives validation its vectors
                    bank, shape_vectors = shape_embeddings(folded_for_inference(model), views.grey, device)
            record["seconds"] = time.perf_counter() - started
            _finish_epoch(model, validation or dataset, views, device, config, epoch, record, history, shape_vectors)
            _save(
                out_dir,
                model,
                dataset,
                render,
                config,
                categories,
                history,
                tsm_weights,
                optimiser,
                epoch,
                phase,
                rng,
                machine,
            )
    return TrainResult(out_dir / LAST, len(history), history)


def _training_loader(
    dataset: RetrievalDataset,
    views: ShapeViews,
    category_of_row: np.ndarray,
    model_config: AMVMLConfig,
    config: AMVMLTrainConfig,
    textured: TexturedViews | None,
    sources: tuple[str, ...] = (),
) -> DataLoader[PhotoSample]:
    """The train split's photos and/or the textured anchors (`textured`, when the config trains on them), shuffled
    into batches; with `sources`, only those of shapes from these sources (a merged dataset's parts), each keeping
    its row of the whole pool."""
    shape_rows = {sid: i for i, sid in enumerate(views.shape_ids)}
    if sources:
        known = {dataset.source_of(sid) for sid in shape_rows}
        if unknown := sorted(set(sources) - known):
            raise TrainingRequestError(
                f"no source {', '.join(unknown)} in {dataset.name} for the end-to-end epochs; its sources: "
                + ", ".join(sorted(known))
            )
        shape_rows = {sid: row for sid, row in shape_rows.items() if dataset.source_of(sid) in sources}
    categories = dataset.categories()
    train = PhotoDataset(
        dataset.split("train"),
        shape_rows,
        categories,
        model_config.image_size,
        augment=True,
        grayscale_probability=config.grayscale_probability,
    )
    if len(train) == 0 and config.train_on_photos:
        raise TrainingRequestError(
            f"{dataset.name} has no training photos (--textured-anchors --no-photos trains without)"
        )
    samples: Dataset[PhotoSample] = train
    if textured is not None:
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
    return DataLoader(
        samples,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=len(samples) > config.batch_size,  # type: ignore[arg-type]
        collate_fn=collate,
        num_workers=config.num_workers,
    )


def _tsm_textures(path: Path) -> TSMTextures:
    """The TSM that paints the tsm anchor look, on the CPU (renders are made once and cached)."""
    model, header = load_tsm(path, "cpu")
    categories = tuple(str(name) for name in header.notes.get("categories", ()))
    return TSMTextures(model, file_checksum(path), categories)


def _starting_point(
    out_dir: Path,
    model_config: AMVMLConfig,
    config: AMVMLTrainConfig,
    device: torch.device,
    init_weights: Path | None,
    resume: bool,
) -> tuple[AMVML, int, list[dict[str, float]], dict[str, Any] | None, dict[str, Any] | None]:
    """(model, first epoch, history so far, optimiser state, random state): the run directory's last epoch when
    resuming, else `init_weights` or a new ImageNet-initialised network."""
    if init_weights is not None:
        model, _ = load_amvml(init_weights, device)
    else:
        model = place_network(new_amvml(model_config), device)
    history: list[dict[str, float]] = []
    start_epoch = 0
    optimiser_state = random_state = None
    state_path = out_dir / STATE
    if resume and state_path.is_file() and (out_dir / LAST).is_file():
        state = torch.load(state_path, map_location=device, weights_only=False)
        model, _ = load_amvml(out_dir / LAST, device)
        start_epoch, history = state["epoch"], state["history"]
        if _phase(start_epoch, config) == state.get("phase", "finetune"):
            optimiser_state = state["optimiser"]
        random_state = state.get("random")  # absent from runs saved before it was kept
        log.info("resuming from epoch %d of %s", start_epoch, out_dir)

    return model, start_epoch, history, optimiser_state, random_state


def _random_state(rng: np.random.Generator) -> dict[str, Any]:
    """Every generator the epochs draw from (shuffles, augmentation, views, negatives): kept with each epoch so that
    a resumed run goes on exactly as an uninterrupted one would have."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": rng.bit_generator.state,
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_random_state(state: dict[str, Any], rng: np.random.Generator) -> None:
    torch.set_rng_state(state["torch"])
    rng.bit_generator.state = state["numpy"]
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
    rng: np.random.Generator,
    machine: dict[str, str | int],
) -> None:
    """The checkpoint (its header says how it was trained, and on what machine) and what resuming needs, after every
    epoch."""
    header = header_for(
        model,
        training_data=dataset.name,
        renderer=render.model_dump(),
        notes={
            "train_config": config.model_dump(),
            "categories": list(categories),
            "history": history,
            "tsm_weights": str(tsm_weights) if tsm_weights else None,
            "machine": machine,
        },
    )
    save_checkpoint(out_dir / LAST, model, header)
    state = {"optimiser": optimiser.state_dict() if optimiser else None, "epoch": epoch + 1, "history": history}
    torch.save({**state, "phase": phase, "random": _random_state(rng)}, out_dir / STATE)
    (out_dir / "history.json").write_text(json.dumps(history, indent=2))
    plot_curves(history, out_dir / "loss_curve.png")
