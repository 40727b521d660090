"""What the lifespan loads once and every route reads: held in app.state, handed to routes by dependency."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np
from fastapi import Request

from photo2cad.service.batcher import MicroBatcher
from photo2cad.service.encoder import PhotoInput, QueryEncoder
from photo2cad.service.errors import NotReady
from photo2cad.service.images import ImageLimits
from photo2cad.service.metrics import ServiceMetrics
from photo2cad.service.retriever import Retriever
from photo2cad.service.served_index import ServedIndex
from photo2cad.service.settings import ServiceSettings


@dataclass
class ServiceState:
    settings: ServiceSettings
    encoder: QueryEncoder
    served: ServedIndex
    batcher: MicroBatcher[PhotoInput, np.ndarray]
    metrics: ServiceMetrics
    limits: ImageLimits
    retriever: Retriever
    ready: bool = True
    mesh_conversions: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))  # GLB downloads


def service_state(request: Request) -> ServiceState:
    state: ServiceState | None = getattr(request.app.state, "service", None)
    if state is None or not state.ready:
        raise NotReady("the service is starting or stopping; retry shortly")
    return state


def metrics_of(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics
