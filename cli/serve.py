"""`photo2cad serve`: the retrieval service on uvicorn; every option's help and default live on ServiceSettings."""

from __future__ import annotations

from pathlib import Path

import typer

from photo2cad.cli.options import given, setting_help, setting_option
from photo2cad.service.settings import ServiceSettings

ENV = "PHOTO2CAD_"


def serve(
    index: Path = typer.Option(
        ..., "--index", envvar="PHOTO2CAD_INDEX", help=ServiceSettings.model_fields["index"].description
    ),
    weights: Path | None = typer.Option(None, help=setting_help(ServiceSettings, "weights", ENV, show_default=False)),
    allow_weights_mismatch: bool = typer.Option(
        False, "--allow-weights-mismatch", help=setting_help(ServiceSettings, "allow_weights_mismatch", ENV)
    ),
    host: str | None = setting_option(ServiceSettings, "host", env_prefix=ENV),
    port: int | None = setting_option(ServiceSettings, "port", env_prefix=ENV),
    allowed_hosts: str | None = setting_option(ServiceSettings, "allowed_hosts", env_prefix=ENV),
    device: str | None = setting_option(ServiceSettings, "device", env_prefix=ENV),
    batch_max_size: int | None = setting_option(ServiceSettings, "batch_max_size", env_prefix=ENV),
    batch_max_wait_ms: float | None = setting_option(ServiceSettings, "batch_max_wait_ms", env_prefix=ENV),
    reload_poll_seconds: float | None = setting_option(ServiceSettings, "reload_poll_seconds", env_prefix=ENV),
    limit_concurrency: int | None = setting_option(ServiceSettings, "limit_concurrency", env_prefix=ENV),
    torch_threads: int | None = typer.Option(
        None, help=setting_help(ServiceSettings, "torch_threads", ENV, show_default=False)
    ),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="Log every request."),
) -> None:
    """Serve retrieval over HTTP: POST /retrieve, a demo page at /, /docs, /metrics, /healthz, /readyz.

    The encoder and the index load once at start; a new index version (`photo2cad index build` or `update` on the
    same directory) is validated and swapped in without a restart. Every setting also reads from its PHOTO2CAD_*
    environment variable; the secrets are read only from the environment, so they never show in the process list:
    PHOTO2CAD_ADMIN_TOKEN (enables POST /admin/reload) and PHOTO2CAD_API_KEY (required in X-API-Key by /retrieve and
    /shapes when set). Listens on 127.0.0.1 only unless --host says otherwise; to expose it, put the reverse proxy of
    docker/ in front. Limits: PHOTO2CAD_MAX_UPLOAD_BYTES, PHOTO2CAD_MAX_IMAGE_PIXELS, PHOTO2CAD_MIN_IMAGE_SIDE,
    PHOTO2CAD_MAX_ASPECT_RATIO, PHOTO2CAD_MAX_PHOTOS_IN_FLIGHT, PHOTO2CAD_DECODE_PIXELS_IN_FLIGHT,
    PHOTO2CAD_HEADER_TIMEOUT_SECONDS, PHOTO2CAD_BODY_TIMEOUT_SECONDS (docs/service.md lists them all).
    """
    from photo2cad.service.app import plan_startup

    # Options given on the command line win; the rest come from PHOTO2CAD_* variables or the defaults.
    settings = ServiceSettings(
        **given(
            index=index,
            weights=weights,
            allow_weights_mismatch=allow_weights_mismatch or None,
            host=host,
            port=port,
            allowed_hosts=allowed_hosts,
            device=device,
            batch_max_size=batch_max_size,
            batch_max_wait_ms=batch_max_wait_ms,
            reload_poll_seconds=reload_poll_seconds,
            limit_concurrency=limit_concurrency,
            torch_threads=torch_threads,
        )
    )
    plan = plan_startup(settings)  # refuse a bad index or weights with a message, before uvicorn starts
    typer.echo(f"index {plan.version_dir}, weights {plan.weights}; listening on http://{settings.host}:{settings.port}")
    run_service(settings, access_log=access_log)


def run_service(settings: ServiceSettings, access_log: bool = True) -> None:
    """Start uvicorn on the app for `settings` (blocks until the server stops)."""
    import uvicorn

    from photo2cad.service.app import create_app
    from photo2cad.service.transport import header_timeout_protocol

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        http=header_timeout_protocol(settings.header_timeout_seconds),
        limit_concurrency=settings.limit_concurrency,
        access_log=access_log,
        timeout_graceful_shutdown=10,
    )
