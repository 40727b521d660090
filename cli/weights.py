"""`photo2cad weights ...`: inspect and create checkpoints."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from photo2cad.cli.train import LAYOUT_HELP

if TYPE_CHECKING:  # the commands import the network lazily: `--help` stays fast
    from photo2cad.models import AMVML
    from photo2cad.weights.checkpoint import CheckpointHeader

weights_app = typer.Typer(help="Inspect and create checkpoints (safetensors + JSON header).", no_args_is_help=True)


@weights_app.command("show")
def weights_show(
    checkpoint: Path = typer.Argument(..., help="A .safetensors checkpoint written by photo2cad."),
) -> None:
    """Print a checkpoint's header: architecture, config, renderer settings, training data, creation date."""
    from photo2cad.weights.checkpoint import read_header

    typer.echo(json.dumps(read_header(checkpoint).model_dump(mode="json"), indent=2))


@weights_app.command("init")
def weights_init(
    out: Path = typer.Argument(..., help="Where to write the checkpoint."),
    architecture: str = typer.Option("amvml", help="amvml or tsm."),
    backbone: str = typer.Option("resnet34", help="AMV-ML backbone: resnet34 or efficientnet_lite0."),
    num_categories: int = typer.Option(4, help="Category count C (4 for Pix3D, 0 for the car sets)."),
    pretrained: bool = typer.Option(True, help="Start AMV-ML from ImageNet weights when they are available."),
    image_size: int = typer.Option(224, help="AMV-ML view and photo side in pixels."),
    framing: str = typer.Option(
        "object", help="View framing its indexes will render: object (zoomed onto the object) or fixed."
    ),
) -> None:
    """Write an untrained network (ImageNet-initialised where possible) as a checkpoint."""
    from photo2cad.models import AMVMLConfig, TextureSynthesisModule, TSMConfig
    from photo2cad.shapes.settings import RenderSettings
    from photo2cad.weights import header_for, new_amvml, save_checkpoint

    model: AMVML | TextureSynthesisModule
    if architecture == "amvml":
        model = new_amvml(
            AMVMLConfig(backbone=backbone, num_categories=num_categories, pretrained=pretrained, image_size=image_size)
        )  # type: ignore[arg-type]
    elif architecture == "tsm":
        model = TextureSynthesisModule(TSMConfig(num_categories=num_categories))
    else:
        raise typer.BadParameter("must be amvml or tsm", param_hint="--architecture")
    data = "imagenet" if architecture == "amvml" and pretrained else "untrained"
    renderer = None
    if architecture == "amvml":
        renderer = RenderSettings(embed_size=image_size, framing=framing).model_dump()  # type: ignore[arg-type]
    save_checkpoint(out, model, header_for(model, training_data=data, renderer=renderer))
    typer.echo(f"wrote {out}")


@weights_app.command("half")
def weights_half(
    source: Path = typer.Argument(..., help="A trained AMV-ML checkpoint (e.g. runs/amvml/amvml-last.safetensors)."),
    out: Path = typer.Argument(..., help="Where to write the float16 copy."),
    training_data: str | None = typer.Option(None, help="Replace the header's training-data description."),
) -> None:
    """Copy an AMV-ML checkpoint with its weights in float16: half the size, for weights that ship (e.g. in git).
    The header (how it was trained) is kept; loading casts the weights back to float32."""
    from photo2cad.weights.checkpoint import load_amvml, save_checkpoint

    model, header = load_amvml(source)
    if training_data is not None:
        header = header.model_copy(update={"training_data": training_data})
    save_checkpoint(out, model, header, half=True)
    typer.echo(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")


@weights_app.command("prior")
def weights_prior(
    source: Path = typer.Argument(..., help="A trained AMV-ML checkpoint."),
    out: Path = typer.Argument(..., help="Where to write the copy."),
    weight: float = typer.Option(
        ..., min=0.0, max=0.999, help="Share of the view branch's own features in retrieval scores; 0 removes it."
    ),
    stages: int = typer.Option(
        3, min=1, max=3, help="How many of the view branch's last stages the prior reads: 3 (C3-C5) or 1 (C5 alone)."
    ),
) -> None:
    """Copy an AMV-ML checkpoint with another retrieval prior (AMVMLConfig.prior_weight): scores become
    (1 - weight) x the trained embeddings' cosine + weight x the frozen backbone's features' cosine. No tensor
    changes; indexes built with other weights must be rebuilt (`photo2cad index build`)."""
    from photo2cad.weights.checkpoint import set_prior_weight

    _retrieval_copy(source, out, lambda model, header: set_prior_weight(model, header, weight, stages))
    typer.echo(f"wrote {out} (prior weight {weight} over {stages} stage{'s' * (stages > 1)})")


@weights_app.command("categories")
def weights_categories(
    source: Path = typer.Argument(..., help="A trained AMV-ML checkpoint whose header names its categories."),
    out: Path = typer.Argument(..., help="Where to write the copy."),
    weight: float = typer.Option(
        ...,
        min=0.0,
        max=1.0,
        help="Share of the photo's category head in retrieval scores; 0 removes it (and a category probe with it).",
    ),
) -> None:
    """Copy an AMV-ML checkpoint whose retrieval scores also weigh the photo's category head
    (AMVMLConfig.category_weight): a shape of category c scores weight x log(C x p(c | photo)) more, shapes of a
    category the head does not know 0 more; a checkpoint with a category probe (the default weights) multiplies the
    head's probabilities by the probe's. The network's tensors stay as they are (weight 0 drops the probe's);
    indexes built with other weights must be rebuilt."""
    from photo2cad.weights.checkpoint import set_category_weight

    _retrieval_copy(source, out, lambda model, header: set_category_weight(model, header, weight))
    typer.echo(f"wrote {out} (category weight {weight})")


@weights_app.command("probe")
def weights_probe(
    source: Path = typer.Argument(
        ..., help="A trained AMV-ML checkpoint that weighs categories (`weights categories`)."
    ),
    out: Path = typer.Argument(..., help="Where to write the copy."),
    data: Path = typer.Argument(..., help="Dataset root: the probe is fitted on its training photos."),
    layout: str = typer.Option("folder", help=LAYOUT_HELP),
    l2: float = typer.Option(
        1e-4, min=1e-12, help="The probe's L2 penalty on its weights (the default weights': 1e-4)."
    ),
) -> None:
    """Copy an AMV-ML checkpoint with a category probe (AMVMLConfig.category_probe) fitted on DATA's training photos:
    a linear classifier on the photo's frozen view-branch features whose probabilities multiply the category head's in
    the category term (docs/training.md). Photos of categories the heads do not know are left out. Indexes built with
    other weights must be rebuilt."""
    import torch

    from photo2cad.models.datasets import read_dataset
    from photo2cad.models.training.category_probe import add_category_probe
    from photo2cad.weights.checkpoint import read_header

    dataset = read_dataset(layout, data)
    _retrieval_copy(
        source, out, lambda model, header: add_category_probe(model, header, dataset, torch.device("cpu"), l2)
    )
    fitted = read_header(out).notes["category_probe"]
    typer.echo(f"wrote {out} (category probe fitted on {fitted['photos']} training photos of {data})")


def _retrieval_copy(
    source: Path, out: Path, reconfigure: Callable[[AMVML, CheckpointHeader], CheckpointHeader]
) -> None:
    """Copy `source` to `out` in its own precision, with the header `reconfigure` gives (retrieval-only settings)."""
    from photo2cad.weights.checkpoint import is_half, load_amvml, save_checkpoint

    model, header = load_amvml(source)
    save_checkpoint(out, model, reconfigure(model, header), half=is_half(source))
