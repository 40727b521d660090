"""The index directory on disk: versions, the `current` pointer, and the one in-progress build.

    INDEX_DIR/
      current -> v-20261126T091500-3f2a      symlink, switched atomically after a version is validated
      v-20261126T091500-3f2a/                 manifest.json, shapes.faiss, shape_vectors.npy,
                                              view_embeddings.npy, thumbnails/*.jpg
      .build/                                 the build in progress: build.json, shards/, thumbnails/, lock

A reader follows `current`; a failed or interrupted build never touches it. A process that has a version open holds
a shared lock on its directory (`VersionLease`); pruning never deletes a locked version, the current one, or the
newest one that still validates.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from photo2cad.errors import Photo2CadError

log = logging.getLogger(__name__)

CURRENT = "current"
BUILD_DIR = ".build"
VECTORS = "shape_vectors.npy"
VIEW_EMBEDDINGS = "view_embeddings.npy"
FAISS_FILE = "shapes.faiss"
THUMBNAILS = "thumbnails"
MESH_CACHE = ".mesh-cache"


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


class VersionLease:
    """A shared lock on a version directory for as long as this object lives: the version is in use."""

    def __init__(self, directory: Path) -> None:
        self._handle: int | None = os.open(directory, os.O_RDONLY)
        fcntl.flock(self._handle, fcntl.LOCK_SH)

    def release(self) -> None:
        if self._handle is not None:
            os.close(self._handle)  # closing the descriptor drops the lock
            self._handle = None

    def __del__(self) -> None:
        self.release()


def in_use(directory: Path) -> bool:
    """Whether any process (this one included) has the version open."""
    handle = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(handle)
    return False


def versions_newest_first(root: Path) -> list[Path]:
    """Published versions, newest first by their manifest's creation time (names alone tie within a second)."""

    def created(version: Path) -> str:
        try:
            return str(json.loads((version / "manifest.json").read_text())["created_at"])
        except (OSError, ValueError, KeyError):
            return ""  # unreadable: oldest

    return sorted((p for p in root.glob("v-*") if p.is_dir()), key=lambda p: (created(p), p.name), reverse=True)


def prune_versions(root: Path, keep: int = 2, validates: Callable[[Path], bool] | None = None) -> list[Path]:
    """Delete all but the newest `keep` versions. Never deleted: the current version, a version some process has
    open (a server still serving it), and the newest version that `validates` (the last known good one)."""
    current = current_version(root)
    versions = versions_newest_first(root)
    protected = {current, *versions[:keep]}
    if validates is not None:
        last_good = next((v for v in versions if validates(v)), None)
        if last_good is not None:
            protected.add(last_good)
    removed = []
    for old in versions:
        if old in protected:
            continue
        if in_use(old):
            log.info("keeping %s: a process has it open", old.name)
            continue
        shutil.rmtree(old)
        removed.append(old)
    return removed
