"""The index directory on disk: versions, the `current` pointer, and the one in-progress build.

    INDEX_DIR/
      current -> v-20261126T091500-3f2a      symlink, switched atomically after a version is validated
      v-20261126T091500-3f2a/                 manifest.json, shapes.faiss, shape_vectors.npy,
                                              view_embeddings.npy, thumbnails/*.jpg
      .build/                                 the build in progress: build.json, shards/, thumbnails/, lock

A reader follows `current`; a failed or interrupted build never touches it.
"""

from __future__ import annotations

import os
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path

from photo2cad.errors import Photo2CadError

CURRENT = "current"
BUILD_DIR = ".build"
VECTORS = "shape_vectors.npy"
VIEW_EMBEDDINGS = "view_embeddings.npy"
FAISS_FILE = "shapes.faiss"
THUMBNAILS = "thumbnails"


class IndexNotFoundError(Photo2CadError):
    """The directory holds no published index version."""


def new_version_name() -> str:
    return f"v-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"


def current_version(root: Path) -> Path:
    pointer = root / CURRENT
    if not pointer.is_symlink() and not pointer.is_dir():
        raise IndexNotFoundError(
            f"{root} holds no index (no '{CURRENT}' version); build one with `photo2cad index build`"
        )
    target = pointer.resolve()
    if not target.is_dir():
        raise IndexNotFoundError(f"{pointer} points at {target}, which does not exist")
    return target


def has_index(root: Path) -> bool:
    try:
        current_version(root)
    except IndexNotFoundError:
        return False
    return True


def publish(root: Path, version_dir: Path) -> None:
    """Point `current` at `version_dir` in one rename, so readers see the old or the new index, never neither."""
    staging = root / f".{CURRENT}.{secrets.token_hex(4)}"
    staging.symlink_to(version_dir.name)
    os.replace(staging, root / CURRENT)


def prune_versions(root: Path, keep: int = 2) -> list[Path]:
    """Delete all but the newest `keep` versions; the current one is always kept."""
    current = current_version(root)
    versions = sorted((p for p in root.glob("v-*") if p.is_dir()), key=lambda p: p.name, reverse=True)
    removed = []
    for old in versions[keep:]:
        if old != current:
            shutil.rmtree(old)
            removed.append(old)
    return removed
