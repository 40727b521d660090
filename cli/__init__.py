"""The `photo2cad` command: a thin shell that parses, calls library functions and formats their results."""

from __future__ import annotations

if __name__ != "photo2cad.cli":  # the folder imported from the repository root as a top-level `cli`
    raise ImportError("this folder installs as photo2cad.cli: import photo2cad.cli, not cli")

import json
import logging
import platform
from pathlib import Path

import typer

from photo2cad import __version__
from photo2cad.cli.demo import demo
from photo2cad.cli.index import index_app
from photo2cad.cli.serve import serve
from photo2cad.cli.train import eval_command, train_app

app = typer.Typer(
    help="photo2cad: photo in, ranked 3D CAD models out. Index a CAD catalogue, serve retrieval, train, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(index_app, name="index")
app.add_typer(train_app, name="train")
app.command("eval")(eval_command)
app.command("serve")(serve)
app.command("demo")(demo)
weights_app = typer.Typer(help="Inspect and create checkpoints (safetensors + JSON header).", no_args_is_help=True)
app.add_typer(weights_app, name="weights")


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # faiss logs every instruction set it fails to load; only its failures matter to a user.
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)


@app.command()
def info() -> None:
    """Print versions, the device photo2cad would use and which optional back ends are installed."""
    import torch

    from photo2cad.device import pick_device

    try:
        import faiss

        faiss_info = f"{faiss.__version__} ({'GPU' if hasattr(faiss, 'StandardGpuResources') else 'CPU'} build)"
    except ImportError:
        faiss_info = "not installed"
    rows = {
        "photo2cad": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(pick_device("auto")),
        "faiss": faiss_info,
    }
    for key, value in rows.items():
        typer.echo(f"{key:10s} {value}")


@weights_app.command("show")
def weights_show(
    checkpoint: Path = typer.Argument(..., help="A .safetensors checkpoint written by photo2cad."),
) -> None:
    """Print a checkpoint's header: architecture, config, renderer settings, training data, creation date."""
    from photo2cad.weights.checkpoint import CheckpointError, read_header

    try:
        header = read_header(checkpoint)
    except CheckpointError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo(json.dumps(header.model_dump(mode="json"), indent=2))


@weights_app.command("init")
def weights_init(
    out: Path = typer.Argument(..., help="Where to write the checkpoint."),
    architecture: str = typer.Option("amvml", help="amvml or tsm."),
    backbone: str = typer.Option("resnet34", help="AMV-ML backbone: resnet34 or efficientnet_lite0."),
    num_categories: int = typer.Option(4, help="Category count C (4 for Pix3D, 0 for the car sets)."),
    pretrained: bool = typer.Option(True, help="Start AMV-ML from ImageNet weights when they are available."),
    image_size: int = typer.Option(224, help="AMV-ML view and photo side in pixels."),
) -> None:
    """Write an untrained network (ImageNet-initialised where possible) as a checkpoint."""
    from photo2cad.models import AMVML, AMVMLConfig, TextureSynthesisModule, TSMConfig
    from photo2cad.weights.checkpoint import header_for, save_checkpoint

    model: AMVML | TextureSynthesisModule
    if architecture == "amvml":
        model = AMVML(
            AMVMLConfig(backbone=backbone, num_categories=num_categories, pretrained=pretrained, image_size=image_size)
        )  # type: ignore[arg-type]
    elif architecture == "tsm":
        model = TextureSynthesisModule(TSMConfig(num_categories=num_categories))
    else:
        typer.echo("error: --architecture must be amvml or tsm", err=True)
        raise typer.Exit(2)
    data = "imagenet" if architecture == "amvml" and pretrained else "untrained"
    save_checkpoint(out, model, header_for(model, training_data=data))
    typer.echo(f"wrote {out}")


@weights_app.command("half")
def weights_half(
    source: Path = typer.Argument(..., help="A trained AMV-ML checkpoint (e.g. runs/amvml/amvml-last.safetensors)."),
    out: Path = typer.Argument(..., help="Where to write the float16 copy."),
    training_data: str | None = typer.Option(None, help="Replace the header's training-data description."),
) -> None:
    """Copy an AMV-ML checkpoint with its weights in float16: half the size, for weights that ship (e.g. in git).
    The header (how it was trained) is kept; loading casts the weights back to float32."""
    from photo2cad.weights.checkpoint import CheckpointError, load_amvml, save_checkpoint

    try:
        model, header = load_amvml(source)
    except CheckpointError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    if training_data is not None:
        header = header.model_copy(update={"training_data": training_data})
    save_checkpoint(out, model, header, half=True)
    typer.echo(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")
