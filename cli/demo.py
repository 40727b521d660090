"""`photo2cad demo`: the embedded default a newcomer meets first.

First run: generate the seeded demo furniture catalogue, index it with the bundled weights (progress bar), then
serve the page and the API. Later runs reuse both and start serving at once.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import typer

from photo2cad.cli.options import DEVICE_HELP

log = logging.getLogger(__name__)

DEFAULT_WORKDIR = Path("photo2cad-demo")


def prepare_demo(workdir: Path, shapes_per_category: int, device: str, progress: bool = True) -> tuple[Path, Path]:
    """The demo catalogue and its index under `workdir`, made or brought up to date; returns (catalogue, index)."""
    from photo2cad.indexer import BuildRequest, ensure_index
    from photo2cad.models.datasets.demo import generate_demo
    from photo2cad.shapes.settings import render_settings_for
    from photo2cad.weights import read_header, resolve_amvml

    catalogue = workdir / "catalogue"
    summary = generate_demo(catalogue, shapes_per_category=shapes_per_category, progress=progress)
    log.info("demo catalogue: %d shapes, %d photos in %s", summary.shapes, summary.photos, catalogue)
    weights = resolve_amvml(None)
    request = BuildRequest(
        pool=catalogue / "pool",
        out=workdir / "index",
        weights=weights,
        render=render_settings_for(read_header(weights)),
        device=device,
        progress=progress,
    )
    ensure_index(request)
    return catalogue, request.out


def example_photo(catalogue: Path) -> Path | None:
    with (catalogue / "queries.csv").open() as handle:
        for row in csv.DictReader(handle):
            if row["split"] == "test":
                return catalogue / row["image"]
    return None


def demo(
    workdir: Path = typer.Option(DEFAULT_WORKDIR, help="Where the demo catalogue and its index are kept."),
    shapes_per_category: int = typer.Option(60, min=1, help="Demo models per category (bed, chair, sofa, table)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 exposes it to the network)."),
    port: int = typer.Option(8000, help="Port of the page and the API."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve after preparing (default) or just prepare."),
) -> None:
    """Generate a demo furniture catalogue (a few hundred models in obj/glb/ply/stl/off, plus photos with ground
    truth), index it with the bundled weights, and serve the page and the API on it. Open the printed address and
    drop a photo from the catalogue's photos/ folder (the test split is listed in queries.csv)."""
    from photo2cad.cli.serve import run_service
    from photo2cad.service.settings import ServiceSettings
    from photo2cad.weights import resolve_amvml

    catalogue, index_dir = prepare_demo(workdir, shapes_per_category, device)
    photo = example_photo(catalogue)
    typer.echo(f"demo index ready in {index_dir}")
    if photo is not None:
        typer.echo(f"try: curl -F photo=@{photo} http://{host}:{port}/retrieve")
    if serve:
        run_service(ServiceSettings(index=index_dir, weights=resolve_amvml(None), host=host, port=port, device=device))
