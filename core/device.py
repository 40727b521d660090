"""Run-time device choice: the GPU when one is usable, the CPU otherwise, and a log line saying which."""

from __future__ import annotations

import contextlib
import logging
from typing import TypeVar

import torch
from torch import nn

log = logging.getLogger(__name__)

Network = TypeVar("Network", bound=nn.Module)


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


def place_network(model: Network, device: torch.device | str) -> Network:
    """`model` on `device` with its convolution weights in NHWC (channels_last), the layout AMV-ML's convolutions run
    fastest in; each convolution then computes in NHWC whatever layout its input comes in. On the 2-core dev CPU
    (benchmarks/network_layout.py) a Lite0 training step at 160 px takes 0.6-0.8x the time, a batch of views
    0.7x, a query 0.7-0.9x, a ResNet-34 step 0.9x; a real end-to-end epoch 0.65x. Not for the TSM: no faster
    there (1.0-1.1x)."""
    return model.to(device).to(memory_format=torch.channels_last)
