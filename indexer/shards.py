"""Finished work of a build, shard by shard: a shard file appears (by rename) only when complete, so a rerun
knows exactly which shapes are done and redoes none of them."""

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
            arrays["view_embeddings"] = np.stack([s.view_embeddings for s in shard.embedded]).astype(np.float32)
        path = self.shard_dir / f"shard-{self.next_number():06d}.npz"
        with atomic_path(path) as partial:
            np.savez(partial, **arrays)
        return path

    def read_all(self) -> Iterator[Shard]:
        for path in sorted(self.shard_dir.glob("shard-*.npz")):  # a shard being written has a hidden name
            with np.load(path, allow_pickle=False) as data:
                records = [json.loads(r) for r in data["records"].tolist()]
                failed = [json.loads(f) for f in data["failed"].tolist()]
                vectors = data["vectors"] if records else np.zeros((0, 0), np.float32)
                views = data["view_embeddings"] if records else np.zeros((0, 0, 0), np.float32)
            embedded = [
                EmbeddedShape(_record_from_json(r), r["checksum"], vectors[i], views[i], b"")
                for i, r in enumerate(records)
            ]
            failures = [FailedShape(_record_from_json(f), f["checksum"], f["reason"]) for f in failed]
            yield Shard(embedded, failures)


def thumbnail_name(shape_id: str) -> str:
    return hashlib.sha1(shape_id.encode()).hexdigest()[:20] + ".jpg"


def _record_json(record: ShapeRecord, checksum: str | None) -> dict[str, str | None]:
    return {"shape_id": record.shape_id, "path": str(record.path), "category": record.category, "checksum": checksum}


def _record_from_json(data: dict[str, str | None]) -> ShapeRecord:
    return ShapeRecord(shape_id=str(data["shape_id"]), path=Path(str(data["path"])), category=data["category"])
