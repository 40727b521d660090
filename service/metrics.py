"""Prometheus metrics of one app instance (its own registry: two apps in one process never share counters)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# From a cache-warm thumbnail (sub-millisecond) to a ResNet34 batch on a busy CPU (seconds).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGES = ("decode_wait", "decode", "preprocess", "queue", "encode", "search", "rerank", "total")


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "photo2cad_http_requests",
            "HTTP requests answered, by route template, method and status code",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "photo2cad_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "photo2cad_retrieve_stage_seconds",
            "Time a photo spent in each stage (decode_wait: for pixels to decode in; queue: for the encoder)",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "photo2cad_encoder_batch_size",
            "Photos embedded per encoder forward pass",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.index_shapes = Gauge(
            "photo2cad_index_shapes", "Shapes in the index version being served", registry=self.registry
        )
        self.index_version = Gauge(
            "photo2cad_index_version_info", "1 for the index version being served", ["version"], registry=self.registry
        )
        self.reloads = Counter(
            "photo2cad_index_reloads",
            "Attempts to swap in a new index version, by outcome (reloaded, refused)",
            ["outcome"],
            registry=self.registry,
        )
        for stage in STAGES:  # every series exists from the start, so dashboards see zeros, not gaps
            self.stage_seconds.labels(stage)
        for outcome in ("reloaded", "refused"):
            self.reloads.labels(outcome)

    def serving(self, version: str, shapes: int) -> None:
        self.index_version.clear()
        self.index_version.labels(version).set(1)
        self.index_shapes.set(shapes)

    def observe_stages(self, seconds: Mapping[str, float]) -> None:
        for stage, value in seconds.items():
            self.stage_seconds.labels(stage).observe(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetricsMiddleware:
    """Counts every answer, including those no route produced (413 before routing, 404, 500)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"]  # as asked: HEAD is answered as a GET inside
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            # The route template, not the path: shape ids must not become label values.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)
