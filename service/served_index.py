"""The served index: the index version being served, and swapping in a new one without dropping a request.

A request takes `ServedIndex.current` once and uses that version to the end, so a swap in the middle of it can never
mix two versions. A new version is validated (the indexer's own checks plus fit with the served weights) before it
is swapped in; a broken one is refused and the old one keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal

from photo2cad.indexer import IndexVersion, layout, open_index, verify_version
from photo2cad.indexer.manifest import MANIFEST_NAME, Manifest
from photo2cad.service.errors import ServiceConfigError

log = logging.getLogger(__name__)


def follows_current(path: Path) -> bool:
    """An index root (with a `current` pointer) is followed; a version directory is served as it is."""
    return not (path / MANIFEST_NAME).is_file()


def resolve_version(path: Path) -> Path:
    return layout.current_version(path) if follows_current(path) else path.resolve()


def escaping_paths(manifest: Manifest) -> list[str]:
    """Entries whose mesh path leaves the pool or whose thumbnail path leaves the version directory, as written in
    the manifest (absolute, or climbing out with '..'). Serving checks the resolved files again, symlinks included."""
    problems = []
    ids = manifest.shapes.column("shape_id")
    for what, name in (("mesh", "source_path"), ("thumbnail", "thumbnail")):
        paths = manifest.shapes.column(name)
        # Only a path with "..", a drive or UNC sign (":", "\\") or a leading "/" can leave: a million rows are
        # searched for those in their packed bytes (seconds saved at start-up), the few found checked exactly.
        for row in paths.rows_that_may_hold((b"..", b":", b"\\"), first=b"/"):
            stored = paths[int(row)]
            path = PurePosixPath(stored)
            if path.is_absolute() or PureWindowsPath(stored).drive or ".." in path.parts:
                problems.append(f"the {what} path of {ids[int(row)]!r} leaves its directory: {stored!r}")
    return problems


def validate_and_load(
    directory: Path, use_gpu: bool, fits: Callable[[Manifest], list[str]]
) -> tuple[IndexVersion | None, list[str]]:
    """The opened version, or None and every reason it must not serve."""
    problems = verify_version(directory, check_sources=False)
    if problems:
        return None, problems
    loaded = open_index(directory, use_gpu)
    problems = escaping_paths(loaded.manifest) + fits(loaded.manifest)
    return (None, problems) if problems else (loaded, [])


def load_initial(path: Path, use_gpu: bool, fits: Callable[[Manifest], list[str]]) -> IndexVersion:
    try:
        directory = resolve_version(path)
    except layout.IndexNotFoundError as err:
        raise ServiceConfigError(str(err)) from err
    loaded, problems = validate_and_load(directory, use_gpu, fits)
    if loaded is None:
        raise ServiceConfigError(f"index {directory} cannot serve: " + "; ".join(problems))
    return loaded


Outcome = Literal["reloaded", "unchanged", "refused"]


@dataclass(frozen=True)
class ReloadOutcome:
    outcome: Outcome
    version: str  # the version serving after the attempt
    previous_version: str
    candidate: str | None = None  # the version directory looked at
    problems: list[str] = field(default_factory=list)


class ServedIndex:
    def __init__(
        self,
        path: Path,
        initial: IndexVersion,
        fits: Callable[[Manifest], list[str]],
        use_gpu: bool = False,
        on_outcome: Callable[[ReloadOutcome, IndexVersion], None] | None = None,
    ) -> None:
        self.path = path
        self.current = initial
        self._fits = fits
        self._use_gpu = use_gpu
        self._on_outcome = on_outcome
        self._lock = asyncio.Lock()
        self._refused: str | None = None  # the last refused target (or pointer error), so the watcher reports it once

    async def reload(self, retry_refused: bool = True) -> ReloadOutcome:
        """Swap in the version `current` points at now, if it differs from the one serving and validates."""
        async with self._lock:
            serving = self.current
            unchanged = ReloadOutcome("unchanged", serving.name, serving.name, serving.directory.name)
            try:
                target = resolve_version(self.path)
            except layout.IndexNotFoundError as err:
                if str(err) == self._refused and not retry_refused:
                    return unchanged
                self._refused = str(err)
                log.error("cannot follow %s, still serving %s: %s", self.path, serving.name, err)
                return self._finish(ReloadOutcome("refused", serving.name, serving.name, None, [str(err)]))
            if target == serving.directory.resolve() or (str(target) == self._refused and not retry_refused):
                return unchanged
            try:
                loaded, problems = await asyncio.to_thread(validate_and_load, target, self._use_gpu, self._fits)
            except Exception as err:  # noqa: BLE001 - whatever breaks, the old version keeps serving
                loaded, problems = None, [f"{type(err).__name__}: {err}"]
            if loaded is None:
                self._refused = str(target)
                log.error("refused index version %s, still serving %s: %s", target, serving.name, "; ".join(problems))
                return self._finish(ReloadOutcome("refused", serving.name, serving.name, target.name, problems))
            self.current = loaded
            self._refused = None
            log.info("now serving index version %s (%d shapes), was %s", loaded.name, loaded.size, serving.name)
            return self._finish(ReloadOutcome("reloaded", loaded.name, serving.name, target.name))

    def _finish(self, outcome: ReloadOutcome) -> ReloadOutcome:
        if self._on_outcome is not None:
            self._on_outcome(outcome, self.current)
        return outcome

    async def watch(self, interval_s: float) -> None:
        """Poll the `current` pointer forever (run as a task; cancel it to stop)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.reload(retry_refused=False)
            except Exception:  # noqa: BLE001 - the watcher must outlive any one failure
                log.exception("checking %s for a new index version failed", self.path)
