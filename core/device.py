"""Run-time device choice: the GPU when one is usable, the CPU otherwise, and a log line saying which."""

from __future__ import annotations

import contextlib
import logging

import torch

log = logging.getLogger(__name__)


def pick_device(requested: str = "auto") -> torch.device:
    """`auto` takes CUDA when available; an explicit `cuda` on a machine without one is an error, not a fallback."""
    if requested == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda was asked for, but no CUDA GPU is usable here (try --device auto)")
    if device.type == "cuda":
        log.info("using GPU %s", torch.cuda.get_device_name(device))
    else:
        log.info("using CPU (%d threads)", torch.get_num_threads())
    return device


def autocast(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """float16 mixed precision on a GPU; full precision on a CPU, where float16 would be slower, not faster."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()
