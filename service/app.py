"""The app factory and its lifespan: load the encoder and the index once, batch queries, follow new versions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import torch
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from photo2cad import __version__
from photo2cad.device import pick_device
from photo2cad.indexer import IndexVersion, layout
from photo2cad.indexer.manifest import Manifest
from photo2cad.indexer.vector_search import gpu_available
from photo2cad.models import vector_dim
from photo2cad.service.admission import DecodeBudget, InFlightLimit, return_freed_memory
from photo2cad.service.batcher import MicroBatcher
from photo2cad.service.encoder import QueryEncoder, choose_weights, compatibility_problems
from photo2cad.service.errors import ServiceConfigError, install_error_handlers
from photo2cad.service.images import ImageLimits
from photo2cad.service.limits import BodySizeLimitMiddleware
from photo2cad.service.metrics import RequestMetricsMiddleware, ServiceMetrics
from photo2cad.service.retriever import Retriever
from photo2cad.service.routes import admin, ops, retrieve, shapes
from photo2cad.service.routes.page import STATIC, page_router
from photo2cad.service.security import SecurityHeadersMiddleware, TrustedHosts
from photo2cad.service.served_index import ReloadOutcome, ServedIndex, follows_current, load_initial, resolve_version
from photo2cad.service.settings import LOOPBACK_HOSTS, ServiceSettings
from photo2cad.service.state import ServiceState
from photo2cad.service.transport import HeadAsGetMiddleware
from photo2cad.shapes.meshes import file_checksum
from photo2cad.weights.checkpoint import CheckpointError, amvml_config, read_header

log = logging.getLogger(__name__)

# Memory is handed back to the system when decoding goes idle after at least this many pixels: a burst of large
# photos, not every phone snapshot.
TRIM_AFTER_PIXELS = 20_000_000


@dataclass(frozen=True)
class StartupPlan:
    version_dir: Path
    weights: Path
    weights_sha256: str


def plan_startup(settings: ServiceSettings) -> StartupPlan:
    """Which index version and weights would serve, refusing weights that do not fit the index; loads nothing."""
    try:
        version_dir = resolve_version(settings.index)
        manifest = Manifest.read(version_dir)
    except (layout.IndexNotFoundError, OSError, ValueError) as err:
        raise ServiceConfigError(f"cannot read the index at {settings.index}: {err}") from err
    weights = choose_weights(settings.weights, manifest)
    try:
        header = read_header(weights)
        dim = vector_dim(amvml_config(weights, header))
    except CheckpointError as err:
        raise ServiceConfigError(str(err)) from err
    sha256 = file_checksum(weights)
    problems = compatibility_problems(sha256, dim, manifest, settings.allow_weights_mismatch)
    if problems:
        raise ServiceConfigError("; ".join(problems))
    if sha256 != manifest.weights.sha256:
        log.warning(
            "serving weights %s, not %s that index %s was built with", weights, manifest.weights.path, manifest.version
        )
    return StartupPlan(version_dir, weights, sha256)


def _load_state(settings: ServiceSettings, metrics: ServiceMetrics) -> ServiceState:
    plan = plan_startup(settings)
    device = pick_device(settings.device)
    encoder = QueryEncoder.load(plan.weights, device, plan.weights_sha256)

    def fits(manifest: Manifest) -> list[str]:
        return compatibility_problems(
            encoder.weights_sha256, encoder.vector_dim, manifest, settings.allow_weights_mismatch
        )

    def record(outcome: ReloadOutcome, serving: IndexVersion) -> None:
        if outcome.outcome != "unchanged":
            metrics.reloads.labels(outcome.outcome).inc()
        metrics.serving(serving.name, serving.size)

    use_gpu = device.type == "cuda" and gpu_available()
    initial = load_initial(settings.index, use_gpu, fits)
    served = ServedIndex(settings.index, initial, fits, use_gpu, on_outcome=record)
    metrics.serving(initial.name, initial.size)
    encoder.warm_up()
    batcher = MicroBatcher(
        encoder.embed,
        max_size=settings.batch_max_size,
        max_wait_s=settings.batch_max_wait_ms / 1000.0,
        on_batch=lambda size, _seconds: metrics.batch_size.observe(size),
        thread_name="photo2cad-encoder",
    )
    limits = ImageLimits(settings.max_image_pixels, settings.min_image_side, settings.max_aspect_ratio)
    log.info(
        "serving index %s (%d shapes, %s) with weights %s on %s",
        initial.name,
        initial.size,
        initial.directory,
        plan.weights,
        device,
    )
    decode_budget = DecodeBudget(
        settings.decode_pixels_in_flight, on_idle=return_freed_memory, idle_after_pixels=TRIM_AFTER_PIXELS
    )
    retriever = Retriever(
        encoder,
        batcher,
        served,
        limits,
        metrics,
        settings.rerank_factor,
        InFlightLimit(settings.max_photos_in_flight),
        decode_budget,
    )
    return ServiceState(settings, encoder, served, batcher, metrics, limits, retriever)


@contextlib.asynccontextmanager
async def running_service(settings: ServiceSettings, metrics: ServiceMetrics) -> AsyncIterator[ServiceState]:
    """Encoder and index loaded, batcher (and index watcher) running, until the block ends: the app's lifespan, and
    `photo2cad query` without a server."""
    # Process-wide, so set before the encoder's thread starts (it takes the count then) and restored at shutdown
    # (tests build many apps in one process). Two threads on two cores stall for whole scheduler slices whenever a
    # third thread (decoding, the event loop, another process) runs: docs/service.md.
    threads_before = torch.get_num_threads()
    torch.set_num_threads(settings.encoder_threads())
    try:
        try:
            state = await asyncio.to_thread(_load_state, settings, metrics)
        except ServiceConfigError as err:
            log.error("cannot start: %s", err)
            raise
        state.batcher.start()
        watcher = None
        if follows_current(settings.index) and settings.reload_poll_seconds > 0:
            watcher = asyncio.create_task(state.served.watch(settings.reload_poll_seconds), name="index-watcher")
        try:
            yield state
        finally:
            state.ready = False
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await state.batcher.stop()
    finally:
        torch.set_num_threads(threads_before)


def warn_about_exposure(settings: ServiceSettings) -> None:
    if settings.host in ("127.0.0.1", "localhost", "::1"):
        return
    if settings.api_key is None:
        log.warning(
            "listening on %s without an API key: anyone who reaches it can query and download every mesh "
            "(set PHOTO2CAD_API_KEY, and put the proxy of docker/ in front)",
            settings.host,
        )
    if list(settings.allowed_hosts) == list(LOOPBACK_HOSTS):
        log.warning(
            "listening on %s but answering only Host headers %s: set PHOTO2CAD_ALLOWED_HOSTS to the names clients use",
            settings.host,
            ", ".join(settings.trusted_hosts()),
        )


def create_app(settings: ServiceSettings) -> FastAPI:
    metrics = ServiceMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warn_about_exposure(settings)
        async with running_service(settings, metrics) as state:
            app.state.service = state
            yield

    # FastAPIOffline: /docs and /redoc with their scripts served from the installed package, not a CDN.
    app = FastAPIOffline(
        title="photo2cad",
        version=__version__,
        summary="Photo in, ranked 3D CAD models out.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.api_key = settings.api_key
    install_error_handlers(app)
    app.include_router(retrieve.router)
    app.include_router(shapes.router)
    app.include_router(ops.router)
    if settings.admin_token is not None:
        app.include_router(admin.router)
    app.include_router(page_router())
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Each added one wraps those before it: the metrics, outermost, see every answer, including the 400 for an
    # untrusted Host.
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.max_upload_bytes, idle_timeout_s=settings.body_timeout_seconds
    )
    app.add_middleware(TrustedHosts, allowed_hosts=settings.trusted_hosts(), www_redirect=False)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    return app


def create_app_from_env() -> FastAPI:
    """For `uvicorn --factory service.app:create_app_from_env` with PHOTO2CAD_* variables."""
    return create_app(ServiceSettings())  # type: ignore[call-arg]
