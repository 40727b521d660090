"""Every knob of the service in one place, read from PHOTO2CAD_* environment variables or given by the caller."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MEGABYTE = 1024 * 1024
# Names a browser on this machine uses for a service on loopback; a DNS-rebinding page's Host is none of them.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_BINDS = ("0.0.0.0", "::", "")
MIN_SECRET_LENGTH = 16


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class ServiceSettings(BaseSettings):
    # hide_input_in_errors: a refused secret is never printed back.
    model_config = SettingsConfigDict(env_prefix="PHOTO2CAD_", extra="ignore", frozen=True, hide_input_in_errors=True)

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
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        list(LOOPBACK_HOSTS),
        description="Host header values answered (comma-separated; '*.example.com' for subdomains, '*' for any); "
        "others get 400, which stops DNS-rebinding pages from reading a local service. The --host address is "
        "added when it is a specific one",
    )
    limit_concurrency: int | None = Field(
        None,
        ge=1,
        description="connections uvicorn keeps open at once, 503 beyond; off by default, because idle connections "
        "count too (PHOTO2CAD_MAX_PHOTOS_IN_FLIGHT limits work instead)",
    )
    header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="a connection whose request headers are not complete this long after it opened "
        "(or after its previous answer) is closed",
    )
    body_timeout_seconds: float = Field(
        30.0, gt=0, description="a request body that stops arriving for this long gets 408"
    )
    max_photos_in_flight: int = Field(
        128, ge=1, description="photos being decoded, waiting for or in the encoder at once; 503 beyond"
    )
    decode_pixels_in_flight: int = Field(
        48_000_000,
        ge=1,
        description="pixels decoded at once across requests (memory: ~4 bytes each); more wait, smallest first",
    )
    max_batch_photos: int = Field(16, ge=1, le=256, description="photos in one POST /retrieve/batch; 400 beyond")

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
        None,
        description=f"bearer token for POST /admin/reload (at least {MIN_SECRET_LENGTH} characters); the endpoint "
        "does not exist without one",
    )
    api_key: SecretStr | None = Field(
        None,
        description=f"when set (at least {MIN_SECRET_LENGTH} characters), /retrieve and /shapes answer only requests "
        "that carry it in the X-API-Key header; off by default",
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("admin_token", "api_key")
    @classmethod
    def _no_weak_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # Set but empty used to mount /admin/reload with no check at all (empty compared with empty).
        if value is not None and len(value.get_secret_value().strip()) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"PHOTO2CAD_{str(info.field_name).upper()} is set but shorter than {MIN_SECRET_LENGTH} characters "
                "(empty counts); unset it to turn it off, or set a long random secret"
            )
        return value

    def encoder_threads(self) -> int:
        return self.torch_threads or max(1, usable_cpus() - 1)

    def trusted_hosts(self) -> list[str]:
        """allowed_hosts, plus the address the service listens on when that is one specific address."""
        hosts = list(self.allowed_hosts)
        bound = f"[{self.host}]" if ":" in self.host else self.host
        if self.host not in WILDCARD_BINDS and bound not in hosts:
            hosts.append(bound)
        return hosts
