"""`photo2cad index ...`: build, update, inspect and verify an index directory."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from photo2cad.indexer.vector_search import IndexKind

index_app = typer.Typer(
    help="Render a CAD pool headless, embed it with AMV-ML and keep a FAISS index of it up to date.",
    no_args_is_help=True,
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _print_report(report: object) -> None:
    from photo2cad.indexer.runner import BuildReport

    assert isinstance(report, BuildReport)
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
    weights: Path | None = typer.Option(None, help="AMV-ML checkpoint; default: the bundled demo weights."),
    categories: Path | None = typer.Option(None, help="CSV with columns shape_id,category (overrides folder names)."),
    views: int = typer.Option(12, min=1, help="Views per shape (method.md: 12, azimuth every 30 degrees)."),
    index_kind: str = typer.Option("exact", "--index", help="exact (default), ivf or hnsw (large pools)."),
    batch_size: int = typer.Option(8, min=1, help="Shapes rendered and embedded together; one shard per batch."),
    device: str = typer.Option("auto", help="auto (GPU when present), cpu or cuda."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue an interrupted build (default)."),
    ray: bool = typer.Option(False, "--ray", help="Run on a Ray cluster (or a local one) with Ray Data."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Build an index of POOL in OUT. Finished shapes are kept shard by shard: a killed build resumes where it
    stopped. The new version is published only after it validates; the previous one keeps serving until then."""
    from photo2cad.indexer.runner import BuildError, BuildRequest, build_index
    from photo2cad.shapes.settings import RenderSettings
    from photo2cad.weights.bundled import NoWeightsError, resolve_amvml
    from photo2cad.weights.checkpoint import CheckpointError, read_header

    if index_kind not in ("exact", "ivf", "hnsw"):
        raise _fail("--index must be exact, ivf or hnsw")
    kind: IndexKind = index_kind  # type: ignore[assignment]
    try:
        weights_path = resolve_amvml(weights)
        image_size = int(read_header(weights_path).config.get("image_size", 224))
        request = BuildRequest(
            pool=pool,
            out=out,
            weights=weights_path,
            render=RenderSettings(num_views=views, embed_size=image_size),
            categories_csv=categories,
            index_kind=kind,
            batch_size=batch_size,
            device=device,
            resume=resume,
            progress=progress,
        )
        if ray:
            from photo2cad.indexer.distributed import build_index_with_ray

            report = build_index_with_ray(request)
        else:
            report = build_index(request)
    except (BuildError, NoWeightsError, CheckpointError, FileNotFoundError, ValueError) as err:
        raise _fail(str(err)) from err
    _print_report(report)


@index_app.command("update")
def update(
    directory: Path = typer.Argument(..., help="An index directory made by `photo2cad index build`."),
    weights: Path | None = typer.Option(None, help="Re-embed everything with these weights instead."),
    device: str = typer.Option("auto", help="auto (GPU when present), cpu or cuda."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Bring an index up to date with its pool: embed new files, re-embed changed ones (by checksum), drop
    deleted ones. Unchanged shapes are reused as they are."""
    from photo2cad.indexer.layout import IndexNotFoundError
    from photo2cad.indexer.runner import BuildError, build_index, update_request
    from photo2cad.weights.checkpoint import CheckpointError

    try:
        report = build_index(update_request(directory, weights=weights, device=device, progress=progress))
    except (BuildError, IndexNotFoundError, CheckpointError, FileNotFoundError) as err:
        raise _fail(str(err)) from err
    _print_report(report)


@index_app.command("info")
def info(directory: Path = typer.Argument(..., help="An index directory.")) -> None:
    """Print what the current version holds and how it was made (renderer, weights, counts)."""
    from photo2cad.indexer.layout import IndexNotFoundError
    from photo2cad.indexer.runner import describe_index

    try:
        typer.echo(json.dumps(describe_index(directory), indent=2, default=str))
    except IndexNotFoundError as err:
        raise _fail(str(err)) from err


@index_app.command("verify")
def verify(directory: Path = typer.Argument(..., help="An index directory.")) -> None:
    """Check the current version: files consistent, vectors sound, thumbnails present, sources unchanged.
    Exits 1 when anything is wrong."""
    from photo2cad.indexer.layout import IndexNotFoundError
    from photo2cad.indexer.runner import verify_index

    try:
        problems = verify_index(directory)
    except IndexNotFoundError as err:
        raise _fail(str(err)) from err
    for problem in problems:
        typer.echo(f"problem: {problem}")
    if problems:
        raise typer.Exit(1)
    typer.echo("ok")
