"""Same seed, same weights: the switches a training run needs to repeat itself bit for bit.

Seeding alone is not enough: measured on the CPU, two processes of one recipe ran the warm-up identically and ended
the end-to-end epochs with weights a few float16 steps apart; under PyTorch's deterministic algorithms they end
identical (docs/training.md, "Deterministic kernels"). Where an operation has no deterministic form PyTorch warns
(warn_only) rather than stop a run that has hours of work in it.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

# cuBLAS repeats itself only with a fixed workspace (PyTorch's "Reproducibility" notes). It reads the setting when a
# process first uses cuBLAS, so a trainer pins it before any CUDA work of its own (TSM textures run before the epochs).
CUBLAS_WORKSPACE = ":4096:8"


def pin_cublas_workspace(enabled: bool, device: torch.device) -> None:
    """For a deterministic run on a GPU: the fixed cuBLAS workspace, unless the environment already names one."""
    if enabled and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


@contextmanager
def deterministic_algorithms(enabled: bool) -> Iterator[None]:
    """Within the block, PyTorch picks deterministic kernels (when `enabled`); the process's earlier choice comes back
    after it, so a library caller's own setting survives a training run.

    Without filling new tensors' memory first: PyTorch's deterministic mode also writes NaN into every `torch.empty`
    by default, a guard against kernels that read memory they never wrote. Ours do not (the same weights, bit for
    bit, with and without it: docs/training.md), and on the CPU the filling cost 12-18 % of an end-to-end epoch of
    the bundled recipe."""
    was_enabled = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    was_filling = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_enabled, warn_only=was_warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = was_filling  # type: ignore[attr-defined]


def training_machine(device: torch.device) -> dict[str, str | int]:
    """What a checkpoint's header records of the machine that trained it: a seeded run repeats its bits only on the
    same kind of processor and PyTorch build (the vector kernels PyTorch picks, AVX2 or AVX-512, round differently)."""
    machine: dict[str, str | int] = {
        "cpu": cpu_name(),
        "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": device.type,
    }
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(device)
    return machine


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The processor's model name with its family and model numbers where Linux tells them (a virtual machine's name
    is often just the vendor's brand), else what the platform module knows."""
    fields: dict[str, str] = {}
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if not key.strip() and fields:
                break  # the first processor's block is enough
            fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name") or platform.processor() or platform.machine() or "unknown"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name
