"""`photo2cad query PHOTO... --index DIR`: rank shapes for photos without a server, through the service's own pipeline.

The photos go through the same Retriever as POST /retrieve/batch (the same decoding, limits, encoder batching,
search and re-ranking), so a script's answers are the service's answers; `--json` prints the batch route's JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from photo2cad.cli.options import DEVICE_HELP, given
from photo2cad.service.images import Box
from photo2cad.service.settings import ServiceSettings

if TYPE_CHECKING:  # the service's modules load torch: imported when the command runs, not for every --help
    from photo2cad.service.schemas import RetrieveBatchResponse


def query(
    photos: list[Path] = typer.Argument(..., help="Photos to rank the shapes for (JPEG, PNG, WebP, HEIC, AVIF)."),
    index: Path = typer.Option(
        ..., "--index", envvar="PHOTO2CAD_INDEX", help=ServiceSettings.model_fields["index"].description
    ),
    top_k: int = typer.Option(10, "--top-k", min=1, max=100, help="How many shapes to list per photo."),
    category: str | None = typer.Option(None, help="Rank only shapes of this category."),
    rerank: bool = typer.Option(False, "--rerank", help="Re-score the best candidates with view attention."),
    masks: list[Path] = typer.Option(
        [],
        "--mask",
        help="An object mask for a photo (same size; non-zero = object). Give one per photo, in the photos' order.",
    ),
    boxes: list[str] = typer.Option(
        [],
        "--box",
        help="x,y,w,h: the object's box in a photo's pixels (as displayed), to crop to. One per photo, in order.",
    ),
    json_output: bool = typer.Option(False, "--json", help="Print JSON (the shape of POST /retrieve/batch's answer)."),
    weights: Path | None = typer.Option(None, help="AMV-ML checkpoint; default: the one the index was built with."),
    device: str | None = typer.Option(None, help=DEVICE_HELP),
) -> None:
    """Rank the indexed shapes by similarity to the object in each photo, without starting a server.

    A photo that cannot be read or is refused (the same refusals as the API) is reported with its reason and the
    others are still ranked; the exit code is then 1.
    """
    for given_per_photo, option in ((masks, "--mask"), (boxes, "--box")):
        if given_per_photo and len(given_per_photo) != len(photos):
            raise typer.BadParameter(
                f"{len(given_per_photo)} {option} for {len(photos)} photos: give one per photo, in order",
                param_hint=option,
            )
    try:
        parsed_boxes = [Box.parse(text) for text in boxes]
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--box") from err
    requests = [
        PhotoRequest(photo, masks[i] if masks else None, parsed_boxes[i] if parsed_boxes else None)
        for i, photo in enumerate(photos)
    ]
    settings = ServiceSettings(**given(index=index, weights=weights, device=device, reload_poll_seconds=0))
    answer = asyncio.run(rank_photos(settings, requests, top_k, category, rerank))
    if json_output:
        typer.echo(answer.model_dump_json(indent=2))
    else:
        print_table(answer)
    if any(item.status != 200 for item in answer.items):
        raise typer.Exit(1)


@dataclass(frozen=True)
class PhotoRequest:
    """A photo to rank from the command line, with its optional mask file and box."""

    photo: Path
    mask: Path | None = None
    box: Box | None = None


async def rank_photos(
    settings: ServiceSettings, photos: list[PhotoRequest], top_k: int, category: str | None, rerank: bool
) -> RetrieveBatchResponse:
    from photo2cad.service.app import running_service
    from photo2cad.service.metrics import ServiceMetrics
    from photo2cad.service.retriever import Query
    from photo2cad.service.routes.retrieve import batch_items
    from photo2cad.service.schemas import BatchItem, RetrieveBatchResponse

    items = []
    async with running_service(settings, ServiceMetrics()) as state:
        index_version = state.served.current.name
        # As many at a time as the encoder takes in one forward pass: full batches, few open files.
        chunk = settings.batch_max_size
        for start in range(0, len(photos), chunk):
            requests = photos[start : start + chunk]
            with contextlib.ExitStack() as files:
                queries, readable, unreadable = [], [], {}
                for request in requests:
                    try:
                        photo = files.enter_context(request.photo.open("rb"))
                        mask = files.enter_context(request.mask.open("rb")) if request.mask else None
                        queries.append(Query(photo=photo, mask=mask, box=request.box))
                        readable.append(request.photo)
                    except OSError as err:
                        unreadable[request.photo] = (
                            f"cannot read {err.filename or request.photo}: {err.strerror or err}"
                        )
                batch = await state.retriever.retrieve_many(queries, top_k, category, rerank)
            ranked = dict(zip(readable, batch_items([str(p) for p in readable], batch.answers, ""), strict=True))
            for request in requests:
                path = request.photo
                items.append(ranked.get(path) or BatchItem(filename=str(path), status=400, detail=unreadable[path]))
    return RetrieveBatchResponse(index_version=index_version, items=items)


def print_table(answer: RetrieveBatchResponse) -> None:
    for item in answer.items:
        if item.answer is None:
            typer.echo(f"{item.filename}: refused ({item.status}): {item.detail}", err=True)
            continue
        timings = item.answer.timings
        typer.echo(f"{item.filename}  (index {answer.index_version}, {timings.total_ms:.0f} ms)")
        width = max((len(r.shape_id) for r in item.answer.results), default=8)
        for result in item.answer.results:
            match = f"{result.match} match" if result.match else ""
            category = result.category or ""
            typer.echo(f"  {result.rank:>3}  {result.shape_id:<{width}}  {result.score:6.3f}  {match:<14}  {category}")
