"""`photo2cad eval`: a thin shell over photo2cad.models.evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from photo2cad.cli.options import DEVICE_HELP
from photo2cad.cli.train import LAYOUT_HELP


def eval_command(
    data: Path = typer.Argument(..., help="Dataset root."),
    layout: str = typer.Option("folder", help=LAYOUT_HELP),
    weights: Path | None = typer.Option(None, help="AMV-ML checkpoint; default: the bundled weights."),
    out: Path = typer.Option(Path("runs/eval"), help="Report directory: report.json, per_photo.csv, gallery.jpg."),
    split: str = typer.Option("test", help="Which photos to run: test (default) or val."),
    index: Path | None = typer.Option(None, help="Index of the test pool to reuse or build (default OUT/index)."),
    views: int = typer.Option(12, help="Views per shape."),
    within_category: bool | None = typer.Option(
        None, help="Rank within the ground-truth category (default: the dataset's protocol; on for pix3d)."
    ),
    geometric: bool = typer.Option(True, help="Chamfer distance and F-score of the first result."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """Top1@R, Top10@R and category accuracy (overall and per category), plus geometric scores of the first result,
    on a dataset's test photos. Builds the test pool's index or reuses one made with the same weights."""
    from photo2cad.device import pick_device
    from photo2cad.models.datasets import read_dataset
    from photo2cad.models.evaluation.evaluate import evaluate
    from photo2cad.weights.bundled import resolve_amvml

    report = evaluate(
        resolve_amvml(weights),
        read_dataset(layout, data),
        out,
        pick_device(device),
        split=split,
        index_dir=index,
        views=views,
        within_category=within_category,
        geometric=geometric,
    )
    typer.echo(json.dumps({"overall": report.overall, "per_category": report.per_category}, indent=2))
    typer.echo(f"report files in {out}")
