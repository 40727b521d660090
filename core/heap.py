"""The C heap during training and PyTorch index builds on a CPU: large blocks kept for reuse instead of handed back
to the kernel after every step.

glibc serves each large allocation (above its mmap threshold, at most 32 MB) with a fresh `mmap` and gives it back
with `munmap` when freed. A training step on the CPU allocates activations of hundreds of megabytes and frees them,
so every step faults all their pages in again, each one zeroed by the kernel: on the 2-core dev CPU (2026-12-02) an
end-to-end step of the bundled recipe took 3.5 s that way and 1.9 s with the heap kept (system time 16 s against
3 s over eight steps). What a network computes does not depend on where its memory lies: the weights are the same
bit for bit (docs/training.md, "Faster epochs, the same bits").
"""

from __future__ import annotations

import ctypes
import logging
import platform
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

# mallopt's parameters and glibc's defaults (malloc.h, mallopt(3)).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
DEFAULT_TRIM_THRESHOLD = 128 * 1024
DEFAULT_MMAP_MAX = 65536
KEEP_EVERYTHING = 2**31 - 1  # mallopt takes a C int: about 2 GB of free heap top kept before trimming


@contextmanager
def heap_kept_for_reuse() -> Iterator[None]:
    """Within the block, glibc serves every allocation from its heap and keeps freed memory there for the next step
    (no `mmap`, no trimming); after it, glibc's defaults come back and the free memory is returned to the system.
    Elsewhere than glibc (macOS, musl) it does nothing."""
    libc = _glibc()
    if libc is None:
        yield
        return
    libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, KEEP_EVERYTHING)
    try:
        yield
    finally:
        libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        log.info("glibc not loadable: the heap keeps its defaults")
        return None
