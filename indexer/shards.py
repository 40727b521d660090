"""Finished work of a build, shard by shard: a shard file appears (by rename) only when complete, so a rerun
knows exactly which shapes are done and redoes none of them. A shard's arrays are read only when its version is
written (`read_arrays`), one shard at a time: a build of a million shapes never holds them all in memory."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from photo2cad.files import atomic_path
from photo2cad.shapes.pool import ShapeRecord


@dataclass(frozen=True)
class EmbeddedShape:
    record: ShapeRecord
    checksum: str
    shape_vector: np.ndarray  # (D,) float32
    view_embeddings: np.ndarray  # (V, D) float32
    thumbnail_jpeg: bytes


@dataclass(frozen=True)
class FailedShape:
    record: ShapeRecord
    checksum: str | None
    reason: str


@dataclass(frozen=True)
class Shard:
    embedded: list[EmbeddedShape]
    failed: list[FailedShape]

    def finished(self) -> list[EmbeddedShape | FailedShape]:
        return [*self.embedded, *self.failed]


class ShardStore:
    """`shards/shard-NNNNNN.npz` plus `thumbnails/<key>.jpg` under a build directory."""

    def __init__(self, build_dir: Path) -> None:
        self.shard_dir = build_dir / "shards"
        self.thumbnail_dir = build_dir / "thumbnails"
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        self.thumbnail_dir.mkdir(parents=True, exist_ok=True)

    def next_number(self) -> int:
        numbers = [int(p.stem.split("-")[1]) for p in self.shard_dir.glob("shard-*.npz")]
        return max(numbers, default=-1) + 1

    def write(self, shard: Shard) -> Path:
        for shape in shard.embedded:
            (self.thumbnail_dir / thumbnail_name(shape.record.shape_id)).write_bytes(shape.thumbnail_jpeg)
        arrays: dict[str, Any] = {
            "records": np.array(
                [json.dumps(_record_json(s.record, s.checksum)) for s in shard.embedded], dtype=np.str_
            ),
            "failed": np.array(
                [json.dumps({**_record_json(f.record, f.checksum), "reason": f.reason}) for f in shard.failed],
                dtype=np.str_,
            ),
        }
        if shard.embedded:
            arrays["vectors"] = np.stack([s.shape_vector for s in shard.embedded]).astype(np.float32)
            # float16, as the version stores them: half the disk for the same published index
            arrays["view_embeddings"] = np.stack([s.view_embeddings for s in shard.embedded]).astype(np.float16)
        path = self.shard_dir / f"shard-{self.next_number():06d}.npz"
        with atomic_path(path) as partial:
            np.savez(partial, **arrays)
        return path

    def read_records(self) -> Iterator[tuple[Path, int, EmbeddedRecord | FailedShape]]:
        """(shard file, row in it, what it holds) for every finished shape, without reading vectors."""
        for path in sorted(self.shard_dir.glob("shard-*.npz")):  # a shard being written has a hidden name
            with np.load(path, allow_pickle=False) as data:
                records = [json.loads(r) for r in data["records"].tolist()]
                failed = [json.loads(f) for f in data["failed"].tolist()]
            for row, r in enumerate(records):
                yield path, row, EmbeddedRecord(_record_from_json(r), str(r["checksum"]))
            for f in failed:
                yield path, -1, FailedShape(_record_from_json(f), f["checksum"], f["reason"])


@dataclass(frozen=True)
class EmbeddedRecord:
    """A shape a shard holds vectors of."""

    record: ShapeRecord
    checksum: str


def read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(shape vectors (n, D) float32, view embeddings (n, V, D)) of one shard file."""
    with np.load(path, allow_pickle=False) as data:
        return data["vectors"].astype(np.float32), data["view_embeddings"]


def thumbnail_name(shape_id: str) -> str:
    return hashlib.sha1(shape_id.encode()).hexdigest()[:20] + ".jpg"


def _record_json(record: ShapeRecord, checksum: str | None) -> dict[str, str | None]:
    return {"shape_id": record.shape_id, "path": str(record.path), "category": record.category, "checksum": checksum}


def _record_from_json(data: dict[str, str | None]) -> ShapeRecord:
    return ShapeRecord(shape_id=str(data["shape_id"]), path=Path(str(data["path"])), category=data["category"])
