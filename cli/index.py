"""`photo2cad index ...`: build, update, inspect and verify an index directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from photo2cad.cli.options import DEVICE_HELP, given, setting_help
from photo2cad.indexer.runner import DEFAULT_MAX_FACES, BuildReport
from photo2cad.indexer.vector_search import IndexKind, SearchConfig

index_app = typer.Typer(
    help="Render a CAD pool headless, embed it with AMV-ML and keep a FAISS index of it up to date.",
    no_args_is_help=True,
)
PROGRESS_HELP = "Show a progress bar."
MAX_FACES_HELP = (
    f"Simplify meshes above this many faces before rendering (default {DEFAULT_MAX_FACES:,}; 0: draw every face). "
    "The views do not change by more than half a pixel, the build gets several times faster on heavy meshes."
)


def _search_options(
    index_kind: IndexKind | None, ivf_lists: int | None, ivf_probe: int | None, hnsw_ef_search: int | None
) -> dict[str, Any]:
    return given(kind=index_kind, ivf_lists=ivf_lists, ivf_probe=ivf_probe, hnsw_ef_search=hnsw_ef_search)


INDEX_KIND = typer.Option(None, help=setting_help(SearchConfig, "kind") + ": exact for up to ~100k shapes")
IVF_LISTS = typer.Option(None, min=1, help=setting_help(SearchConfig, "ivf_lists", show_default=False))
IVF_PROBE = typer.Option(None, min=1, help=setting_help(SearchConfig, "ivf_probe", show_default=False))
HNSW_EF = typer.Option(None, min=1, help=setting_help(SearchConfig, "hnsw_ef_search", show_default=False))


def _print_report(report: BuildReport) -> None:
    if not report.published:
        typer.echo(
            f"index {report.version_dir}: nothing changed ({report.shapes} shapes, {len(report.failures)} failed); "
            "no new version published"
        )
        return
    times = report.times
    typer.echo(
        f"index {report.version_dir}: {report.shapes} shapes "
        f"({report.embedded_now} embedded now, {report.reused} unchanged, {report.resumed} from the interrupted run), "
        f"{len(report.failures)} failed, {report.seconds:.1f} s"
        + (f", {report.seconds / times.counts['shapes']:.3f} s per shape embedded" if times.counts["shapes"] else "")
    )
    if times.counts["shapes"]:
        stages = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in times.as_dict().items())
        typer.echo(f"stages (rendering and embedding overlap): {stages}")
    if report.recall_at_10 is not None:
        typer.echo(f"approximate index recall@10 against exact search: {report.recall_at_10:.3f}")
    for failure in report.failures:
        typer.echo(f"skipped {failure.source_path}: {failure.reason}")


@index_app.command("build")
def build(
    pool: Path = typer.Argument(
        ..., help="Folder of CAD models (obj, glb/gltf, ply, stl, off); sub-folders = categories."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Index directory to create or update (versions inside)."),
    weights: Path | None = typer.Option(None, help="AMV-ML checkpoint; default: the bundled weights."),
    categories: Path | None = typer.Option(None, help="CSV with columns shape_id,category (overrides folder names)."),
    views: int | None = typer.Option(
        None, min=1, help="Views per shape (default: as many as the weights were trained with; docs/method.md: 12)."
    ),
    index_kind: IndexKind = INDEX_KIND,
    ivf_lists: int | None = IVF_LISTS,
    ivf_probe: int | None = IVF_PROBE,
    hnsw_ef_search: int | None = HNSW_EF,
    max_faces: int = typer.Option(DEFAULT_MAX_FACES, min=0, help=MAX_FACES_HELP),
    batch_size: int = typer.Option(8, min=1, help="Shapes rendered and embedded together; one shard per batch."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue an interrupted build (default)."),
    reuse: bool = typer.Option(
        True,
        "--reuse/--no-reuse",
        help="Take shapes whose file is unchanged from the current version of OUT when it was built the same way "
        "(default): changing only --index-kind and its parameters re-indexes in seconds without rendering.",
    ),
    ray: bool = typer.Option(False, "--ray", help="Run on a Ray cluster (or a local one) with Ray Data."),
    ray_address: str | None = typer.Option(
        None, help="With --ray: the cluster to join, e.g. ray://head:10001 (default: RAY_ADDRESS, else a local Ray)."
    ),
    render_workers: int = typer.Option(1, min=1, help="With --ray: rendering actors (one CPU each)."),
    embed_workers: int = typer.Option(1, min=1, help="With --ray: embedding actors."),
    gpus_per_embed_worker: float = typer.Option(0.0, min=0.0, help="With --ray: GPUs per embedding actor (1 on GPUs)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=PROGRESS_HELP),
) -> None:
    """Build an index of POOL in OUT. Finished shapes are kept shard by shard: a killed build resumes where it
    stopped. The new version is published only after it validates; the previous one keeps serving until then, and
    a build that would change nothing publishes nothing."""
    from photo2cad.indexer import BuildRequest, build_index
    from photo2cad.shapes.settings import render_settings_for
    from photo2cad.weights import read_header, resolve_amvml

    weights_path = resolve_amvml(weights)
    request = BuildRequest(
        pool=pool,
        out=out,
        weights=weights_path,
        render=render_settings_for(read_header(weights_path), num_views=views),
        search=SearchConfig(**_search_options(index_kind, ivf_lists, ivf_probe, hnsw_ef_search)),
        max_faces=max_faces or None,
        categories_csv=categories,
        batch_size=batch_size,
        device=device,
        resume=resume,
        reuse=reuse,
        progress=progress,
    )
    if ray:
        from photo2cad.indexer.distributed import RayOptions, build_index_with_ray

        options = RayOptions(ray_address, render_workers, embed_workers, gpus_per_embed_worker)
        _print_report(build_index_with_ray(request, options))
    else:
        _print_report(build_index(request))


@index_app.command("update")
def update(
    directory: Path = typer.Argument(..., help="An index directory made by `photo2cad index build`."),
    weights: Path | None = typer.Option(None, help="Re-embed everything with these weights instead."),
    index_kind: IndexKind = INDEX_KIND,
    ivf_lists: int | None = IVF_LISTS,
    ivf_probe: int | None = IVF_PROBE,
    hnsw_ef_search: int | None = HNSW_EF,
    device: str = typer.Option("auto", help=DEVICE_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=PROGRESS_HELP),
) -> None:
    """Bring an index up to date with its pool: embed new files, re-embed changed ones (by checksum), drop
    deleted ones; unchanged shapes are reused as they are. With --index-kind (or its parameters) the vectors are
    indexed again without rendering. Nothing changed: nothing is published."""
    from photo2cad.indexer import update_index
    from photo2cad.indexer.runner import update_request

    overrides: dict[str, Any] = {"device": device, "progress": progress}
    search = _search_options(index_kind, ivf_lists, ivf_probe, hnsw_ef_search)
    if search:
        current = update_request(directory).search
        keep = current.model_dump() if search.get("kind", current.kind) == current.kind else {}
        overrides["search"] = SearchConfig(**{**keep, **search})
    _print_report(update_index(directory, weights=weights, **overrides))


@index_app.command("info")
def info(directory: Path = typer.Argument(..., help="An index directory.")) -> None:
    """Print what the current version holds and how it was made (renderer, weights, search, counts)."""
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
