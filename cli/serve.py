"""`photo2cad serve`: the retrieval service on uvicorn. Wire it with `app.command("serve")(serve)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from photo2cad.service.settings import ServiceSettings


def _help(field: str, show_default: bool = True) -> str:
    info = ServiceSettings.model_fields[field]
    default = f"default: {info.default}; " if show_default else ""
    # Parentheses, not brackets: typer's rich help would read [..] as markup and drop it.
    return f"{info.description or ''} ({default}env PHOTO2CAD_{field.upper()})"


def serve(
    index: Path = typer.Option(
        ..., "--index", envvar="PHOTO2CAD_INDEX", help=ServiceSettings.model_fields["index"].description
    ),
    weights: Path | None = typer.Option(None, help=_help("weights", show_default=False)),
    allow_weights_mismatch: bool = typer.Option(
        False, "--allow-weights-mismatch", help=_help("allow_weights_mismatch")
    ),
    host: str | None = typer.Option(None, help=_help("host")),
    port: int | None = typer.Option(None, help=_help("port")),
    device: str | None = typer.Option(None, help=_help("device")),
    batch_max_size: int | None = typer.Option(None, help=_help("batch_max_size")),
    batch_max_wait_ms: float | None = typer.Option(None, help=_help("batch_max_wait_ms")),
    reload_poll_seconds: float | None = typer.Option(None, help=_help("reload_poll_seconds")),
    limit_concurrency: int | None = typer.Option(None, help=_help("limit_concurrency")),
    torch_threads: int | None = typer.Option(None, help=_help("torch_threads", show_default=False)),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="Log every request."),
) -> None:
    """Serve retrieval over HTTP: POST /retrieve, a demo page at /, /docs, /metrics, /healthz, /readyz.

    The encoder and the index load once at start; a new index version (`photo2cad index build` or `update` on the
    same directory) is validated and swapped in without a restart. Every setting also reads from its PHOTO2CAD_*
    environment variable; the admin token (POST /admin/reload) is read only from PHOTO2CAD_ADMIN_TOKEN, so it never
    shows in the process list. Upload and image limits: PHOTO2CAD_MAX_UPLOAD_BYTES, PHOTO2CAD_MAX_IMAGE_PIXELS,
    PHOTO2CAD_MIN_IMAGE_SIDE, PHOTO2CAD_MAX_ASPECT_RATIO.
    """
    from pydantic import ValidationError

    from photo2cad.service.app import plan_startup
    from photo2cad.service.errors import ServiceConfigError

    given: dict[str, Any] = {
        "index": index,
        "weights": weights,
        "host": host,
        "port": port,
        "device": device,
        "batch_max_size": batch_max_size,
        "batch_max_wait_ms": batch_max_wait_ms,
        "reload_poll_seconds": reload_poll_seconds,
        "limit_concurrency": limit_concurrency,
        "torch_threads": torch_threads,
    }
    if allow_weights_mismatch:
        given["allow_weights_mismatch"] = True
    try:
        # Options given on the command line win; the rest come from PHOTO2CAD_* variables or the defaults.
        settings = ServiceSettings(**{name: value for name, value in given.items() if value is not None})
        plan = plan_startup(settings)  # refuse a bad index or weights with a message, before uvicorn starts
    except ValidationError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    except ServiceConfigError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    typer.echo(f"index {plan.version_dir}, weights {plan.weights}; listening on http://{settings.host}:{settings.port}")
    run_service(settings, access_log=access_log)


def run_service(settings: ServiceSettings, access_log: bool = True) -> None:
    """Start uvicorn on the app for `settings` (blocks until the server stops)."""
    import uvicorn

    from photo2cad.service.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        limit_concurrency=settings.limit_concurrency,
        access_log=access_log,
        timeout_graceful_shutdown=10,
    )
