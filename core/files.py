"""Files that appear whole or not at all: a crash mid-write never leaves half a file under the real name."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A hidden temporary name beside `path` to write to, renamed onto `path` when the block ends without error.

    The temporary name keeps the suffix (numpy appends ".npz" to names without it) and starts with a dot, so pool
    scans and shard listings never mistake it for a finished file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield partial
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def write_bytes_atomically(path: Path, data: bytes) -> None:
    with atomic_path(path) as partial:
        partial.write_bytes(data)
