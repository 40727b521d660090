"""Every knob of the service in one place, read from PHOTO2CAD_* environment variables or given by the caller."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MEGABYTE = 1024 * 1024


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PHOTO2CAD_", extra="ignore", frozen=True)

    index: Path = Field(description="index directory (follows its `current` version) or one version directory")
    weights: Path | None = Field(
        None,
        description="AMV-ML checkpoint; default: the index manifest's weights if that file exists, else the bundled",
    )
    allow_weights_mismatch: bool = Field(
        False, description="serve with weights other than those the index was built with (scores become meaningless)"
    )
    device: str = Field("auto", description="auto (GPU when present), cpu or cuda")
    host: str = Field("127.0.0.1", description="interface to listen on; 0.0.0.0 exposes the service to the network")
    port: int = Field(8000, ge=0, le=65535)
    limit_concurrency: int | None = Field(
        64, ge=1, description="connections handled at once; uvicorn answers 503 beyond it"
    )

    max_upload_bytes: int = Field(20 * MEGABYTE, ge=1, description="largest request body; larger ones get 413")
    max_image_pixels: int = Field(
        40_000_000, ge=1, description="largest photo or mask (width x height), checked before decoding; 413 beyond"
    )
    min_image_side: int = Field(32, ge=1, description="smallest accepted photo side in pixels; 400 below")
    max_aspect_ratio: float = Field(10.0, ge=1.0, description="longest side / shortest side; 400 beyond")

    torch_threads: int | None = Field(
        None,
        ge=1,
        description="CPU threads per encoder forward pass; default: one less than the CPUs this process may use "
        "(at least 1), leaving a core to HTTP and decoding (docs/service.md)",
    )
    rerank_factor: int = Field(5, ge=1, description="re-ranking re-scores rerank_factor x top_k search candidates")
    batch_max_size: int = Field(16, ge=1, description="most photos the encoder embeds in one forward pass")
    batch_max_wait_ms: float = Field(
        5.0,
        ge=0.0,
        description="how long a batch may wait for photos other requests are still decoding (never when none is)",
    )

    reload_poll_seconds: float = Field(
        3.0, ge=0.0, description="how often the index's `current` version is checked for a change; 0 disables"
    )
    admin_token: SecretStr | None = Field(
        None, description="bearer token for POST /admin/reload; the endpoint does not exist without one"
    )

    def encoder_threads(self) -> int:
        return self.torch_threads or max(1, usable_cpus() - 1)
