"""The C heap during training: large blocks stay in the heap for the next step instead of going back to the kernel."""

from __future__ import annotations

import ctypes
import platform

import pytest
import torch

from photo2cad.heap import heap_kept_for_reuse

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="the setting is glibc's"
)


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def mapped_bytes_while_holding(size: int) -> int:
    """Bytes glibc holds in separately mapped blocks while a tensor of `size` bytes is alive."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    block = torch.empty(size, dtype=torch.uint8)
    mapped = int(libc.mallinfo2().hblkhd)
    del block
    return mapped


@glibc_only
def test_a_large_tensor_comes_from_the_heap_within_the_block_and_from_mmap_after_it() -> None:
    size = 64 * 1024 * 1024  # above glibc's largest mmap threshold (32 MB): always mapped by default
    with heap_kept_for_reuse():
        assert mapped_bytes_while_holding(size) < size
    assert mapped_bytes_while_holding(size) >= size, "glibc's defaults are back"
