"""`photo2cad train ...` and `photo2cad eval`: thin shells over models.training and models.evaluation."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

train_app = typer.Typer(
    help="Train the texture synthesis module (tsm) and the retrieval network (amvml).", no_args_is_help=True
)

LAYOUT_HELP = (
    "Dataset layout: pix3d, 3d-future, stanford-cars, compcars, folder (pool/ + queries.csv), ikea-dev, or "
    "ikea-dev-unseen (its val photos show models that no train photo shows)."
)
log = logging.getLogger(__name__)


def _dataset(layout: str, data: Path):  # type: ignore[no-untyped-def]
    from photo2cad.models.datasets import read_dataset
    from photo2cad.models.datasets.records import DatasetError

    try:
        return read_dataset(layout, data)
    except (DatasetError, ValueError, FileNotFoundError) as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err


def _tsm_size(tsm_weights: Path | None) -> int:
    """Normal maps are rendered at the side the TSM was trained on."""
    if tsm_weights is None:
        return 256
    from photo2cad.weights.checkpoint import read_header

    return int(read_header(tsm_weights).config["image_size"])


@train_app.command("amvml")
def train_amvml_command(
    data: Path = typer.Argument(..., help="Dataset root."),
    layout: str = typer.Option("folder", help=LAYOUT_HELP),
    out: Path = typer.Option(Path("runs/amvml"), help="Run directory: checkpoints, history, loss curve."),
    backbone: str = typer.Option(
        "resnet34", help="resnet34 (the paper) or efficientnet_lite0 (ImageNet weights offline)."
    ),
    pretrained: bool = typer.Option(True, help="Start the backbone from ImageNet weights when available."),
    attention: bool = typer.Option(True, help="Learned view attention (off: plain average, the ablation)."),
    tsm_weights: Path | None = typer.Option(None, help="TSM checkpoint: switches the hard triplets on."),
    textured_anchors: bool = typer.Option(
        False, help="Also train on every pool shape rendered with its own materials, as photo-like anchors."
    ),
    photos: bool = typer.Option(
        True, help="Train on the real photos; --no-photos with --textured-anchors trains on the renders alone."
    ),
    epochs: int = typer.Option(10, min=1, help="All epochs, the warm-up ones included."),
    warmup_epochs: int = typer.Option(
        10, min=0, help="First epochs with the backbone frozen: only the heads learn, against the whole pool (fast)."
    ),
    warmup_lr: float = typer.Option(1e-3, help="Learning rate of the heads in the warm-up epochs."),
    photo_branch_lr: float = typer.Option(
        0.0, help="Learning rate of the photo branch in the warm-up (0: frozen); the view side stays frozen."
    ),
    batch_size: int = typer.Option(16, min=2),
    lr: float = typer.Option(1e-4, help="Learning rate of the end-to-end epochs."),
    image_size: int = typer.Option(224, help="View and photo side in pixels."),
    views: int = typer.Option(12, help="Views per shape."),
    train_views: int = typer.Option(4, help="Views per positive shape in a training step."),
    extra_negatives: int = typer.Option(8, help="Extra negative shapes per batch, same category first."),
    validate_every: int = typer.Option(1, help="Epochs between validation passes (0: never)."),
    bank_weight: float = typer.Option(1.0, help="Weight of the InfoNCE term against all shapes (memory bank)."),
    embedding_dim: int = typer.Option(256),
    device: str = typer.Option("auto", help="auto (GPU when present), cpu or cuda."),
    cache: Path = typer.Option(Path("runs/view-cache"), help="Where rendered views are cached between runs."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from the run directory's last epoch."),
    seed: int = typer.Option(0),
) -> None:
    """Metric learning of photos against multi-view renders (plus TSM hard triplets with --tsm-weights).
    Trains on the train split, reports the val split after every epoch; never reads the test split."""
    from photo2cad.device import pick_device
    from photo2cad.models import AMVMLConfig
    from photo2cad.models.training.amvml_trainer import check_request, train_amvml
    from photo2cad.models.training.config import AMVMLTrainConfig
    from photo2cad.shapes.settings import RenderSettings

    dataset = _dataset(layout, data)
    model_config = AMVMLConfig(
        backbone=backbone,  # type: ignore[arg-type]
        num_categories=len(dataset.categories()),
        embedding_dim=embedding_dim,
        num_views=views,
        image_size=image_size,
        pretrained=pretrained,
        view_attention=attention,
    )
    config = AMVMLTrainConfig(
        epochs=epochs,
        warmup_epochs=warmup_epochs,
        warmup_lr=warmup_lr,
        photo_branch_lr=photo_branch_lr,
        batch_size=batch_size,
        lr=lr,
        train_views=train_views,
        extra_negatives=extra_negatives,
        validate_every=validate_every,
        bank_weight=bank_weight,
        tsm_triplets=tsm_weights is not None,
        textured_anchors=textured_anchors,
        train_on_photos=photos,
        seed=seed,
    )
    render = RenderSettings(num_views=views, embed_size=image_size, synth_size=_tsm_size(tsm_weights))
    try:
        check_request(model_config, config, render, tsm_weights)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    result = train_amvml(
        dataset,
        out,
        model_config,
        config,
        render,
        cache,
        pick_device(device),
        tsm_weights=tsm_weights,
        resume=resume,
    )
    typer.echo(f"checkpoint {result.checkpoint} after {result.epochs_run} epochs")
    typer.echo(json.dumps(result.history[-1], indent=2))


@train_app.command("tsm")
def train_tsm_command(
    data: Path = typer.Argument(..., help="Dataset root (its shapes' own materials give the textures)."),
    layout: str = typer.Option("folder", help=LAYOUT_HELP),
    out: Path = typer.Option(Path("runs/tsm"), help="Run directory: checkpoints, sample grids, loss curve."),
    epochs: int = typer.Option(10, min=1),
    batch_size: int = typer.Option(4, min=1),
    max_steps: int | None = typer.Option(None, help="Stop after this many steps (a short CPU run)."),
    views_per_shape: int = typer.Option(12, min=1, help="Camera views per shape used as training pairs."),
    image_size: int = typer.Option(256, help="Generator side in pixels (the paper: 256)."),
    sample_every: int = typer.Option(50, min=1, help="Steps between sample grids under OUT/samples."),
    device: str = typer.Option("auto", help="auto (GPU when present), cpu or cuda."),
    cache: Path = typer.Option(Path("runs/view-cache"), help="Where rendered pairs are cached between runs."),
    resume: bool = typer.Option(True, "--resume/--no-resume"),
) -> None:
    """BicycleGAN-style training of the texture synthesis module on (normal map, textured render) pairs of the
    train split's shapes, with the category terms. Sample grids show the textures improving."""
    from photo2cad.device import pick_device
    from photo2cad.models import TSMConfig
    from photo2cad.models.training.config import TSMTrainConfig
    from photo2cad.models.training.texture_pairs import render_texture_pairs
    from photo2cad.models.training.tsm_trainer import train_tsm
    from photo2cad.shapes.settings import RenderSettings

    dataset = _dataset(layout, data)
    categories = dataset.categories()
    train_shapes = {q.shape_id for q in dataset.split("train")}
    shapes = [s for s in dataset.shapes if s.shape_id in train_shapes] or list(dataset.shapes)
    render = RenderSettings(synth_size=image_size)
    pairs = render_texture_pairs(shapes, categories, render, cache, views_per_shape=views_per_shape)
    checkpoint = train_tsm(
        pairs,
        out,
        TSMConfig(num_categories=len(categories), image_size=image_size),
        TSMTrainConfig(epochs=epochs, batch_size=batch_size, sample_every=sample_every),
        pick_device(device),
        training_data=dataset.name,
        resume=resume,
        max_steps=max_steps,
    )
    typer.echo(f"checkpoint {checkpoint}; sample grids in {out / 'samples'}")


def eval_command(
    data: Path = typer.Argument(..., help="Dataset root."),
    layout: str = typer.Option("folder", help=LAYOUT_HELP),
    weights: Path | None = typer.Option(None, help="AMV-ML checkpoint; default: the bundled demo weights."),
    out: Path = typer.Option(Path("runs/eval"), help="Report directory: report.json, per_photo.csv, gallery.jpg."),
    split: str = typer.Option("test", help="Which photos to run: test (default) or val."),
    index: Path | None = typer.Option(None, help="Index of the test pool to reuse or build (default OUT/index)."),
    views: int = typer.Option(12, help="Views per shape."),
    within_category: bool | None = typer.Option(
        None, help="Rank within the ground-truth category (default: on for pix3d, off elsewhere)."
    ),
    geometric: bool = typer.Option(True, help="Chamfer distance and F-score of the first result."),
    device: str = typer.Option("auto", help="auto (GPU when present), cpu or cuda."),
) -> None:
    """Top1@R, Top10@R and category accuracy (overall and per category), plus geometric scores of the first result,
    on a dataset's test photos. Builds the test pool's index or reuses one made with the same weights."""
    from photo2cad.device import pick_device
    from photo2cad.models.evaluation.evaluate import evaluate
    from photo2cad.weights.bundled import resolve_amvml

    dataset = _dataset(layout, data)
    pool_root = data / "model" if layout == "pix3d" else data
    report = evaluate(
        resolve_amvml(weights),
        dataset,
        pool_root,
        out,
        pick_device(device),
        split=split,
        index_dir=index,
        views=views,
        within_category=layout == "pix3d" if within_category is None else within_category,
        geometric=geometric,
    )
    typer.echo(json.dumps({"overall": report.overall, "per_category": report.per_category}, indent=2))
    typer.echo(f"report files in {out}")
