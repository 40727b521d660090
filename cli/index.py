"""`photo2cad index ...`: build, update, inspect and verify an index directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import typer

from photo2cad.cli.options import DEVICE_HELP
from photo2cad.indexer.runner import BuildReport
from photo2cad.indexer.vector_search import IndexKind

index_app = typer.Typer(
    help="Render a CAD pool headless, embed it with AMV-ML and keep a FAISS index of it up to date.",
    no_args_is_help=True,
)
PROGRESS_HELP = "Show a progress bar."


def _print_report(report: BuildReport) -> None:
    times = report.times
    shapes_per_s = times.counts["shapes"] / max(times.load + times.render + times.embed, 1e-9)
    typer.echo(
        f"index {report.version_dir}: {report.shapes} shapes "
        f"({report.embedded_now} embedded now, {report.reused} unchanged, {report.resumed} from the interrupted run), "
        f"{len(report.failures)} failed, {report.seconds:.1f} s, {shapes_per_s:.2f} shapes/s"
    )
    if times.counts["shapes"]:
        typer.echo(
            f"stages: load {times.load:.1f} s, render {times.render:.1f} s, embed {times.embed:.1f} s, "
            f"index {times.index:.1f} s"
        )
    if report.recall_at_10 is not None:
        typer.echo(f"approximate index recall@10 against exact search: {report.recall_at_10:.3f}")
    for failure in report.failures:
        typer.echo(f"skipped {failure.source_path}: {failure.reason}")


@index_app.command("build")
def build(
    pool: Path = typer.Argument(
        ..., help="Folder of CAD models (obj, glb/gltf, ply, stl, off); sub-folders = categories."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Index directory to create or replace (versions inside)."),
    weights: Path | None = typer.Option(None, help="AMV-ML checkpoint; default: the bundled weights."),
    categories: Path | None = typer.Option(None, help="CSV with columns shape_id,category (overrides folder names)."),
    views: int | None = typer.Option(
        None, min=1, help="Views per shape (default: as many as the weights were trained with; docs/method.md: 12)."
    ),
    index_kind: str = typer.Option("exact", help="Vector search: exact (default), ivf or hnsw (large pools)."),
    batch_size: int = typer.Option(8, min=1, help="Shapes rendered and embedded together; one shard per batch."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue an interrupted build (default)."),
    ray: bool = typer.Option(False, "--ray", help="Run on a Ray cluster (or a local one) with Ray Data."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=PROGRESS_HELP),
) -> None:
    """Build an index of POOL in OUT. Finished shapes are kept shard by shard: a killed build resumes where it
    stopped. The new version is published only after it validates; the previous one keeps serving until then."""
    from photo2cad.indexer import BuildRequest, build_index
    from photo2cad.shapes.settings import render_settings_for
    from photo2cad.weights import read_header, resolve_amvml

    if index_kind not in get_args(IndexKind):
        raise typer.BadParameter(f"must be one of {', '.join(get_args(IndexKind))}", param_hint="--index-kind")
    weights_path = resolve_amvml(weights)
    request = BuildRequest(
        pool=pool,
        out=out,
        weights=weights_path,
        render=render_settings_for(read_header(weights_path), num_views=views),
        categories_csv=categories,
        index_kind=index_kind,  # type: ignore[arg-type]  # checked above
        batch_size=batch_size,
        device=device,
        resume=resume,
        progress=progress,
    )
    if ray:
        from photo2cad.indexer.distributed import build_index_with_ray

        _print_report(build_index_with_ray(request))
    else:
        _print_report(build_index(request))


@index_app.command("update")
def update(
    directory: Path = typer.Argument(..., help="An index directory made by `photo2cad index build`."),
    weights: Path | None = typer.Option(None, help="Re-embed everything with these weights instead."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=PROGRESS_HELP),
) -> None:
    """Bring an index up to date with its pool: embed new files, re-embed changed ones (by checksum), drop
    deleted ones. Unchanged shapes are reused as they are."""
    from photo2cad.indexer import update_index

    _print_report(update_index(directory, weights=weights, device=device, progress=progress))


@index_app.command("info")
def info(directory: Path = typer.Argument(..., help="An index directory.")) -> None:
    """Print what the current version holds and how it was made (renderer, weights, counts)."""
    from photo2cad.indexer import describe_index

    typer.echo(json.dumps(describe_index(directory), indent=2, default=str))


@index_app.command("verify")
def verify(directory: Path = typer.Argument(..., help="An index directory.")) -> None:
    """Check the current version: files consistent, vectors sound, thumbnails present, sources unchanged.
    Exits 1 when anything is wrong."""
    from photo2cad.indexer import verify_index

    problems = verify_index(directory)
    for problem in problems:
        typer.echo(f"problem: {problem}")
    if problems:
        raise typer.Exit(1)
    typer.echo("ok")
