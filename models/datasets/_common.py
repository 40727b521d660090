"""What every reader shares: the error/skip policy, CSV and JSON loading, deterministic splits by photo."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeGuard

from photo2cad.models.datasets.records import SPLITS, DatasetError, Split
from photo2cad.shapes.csvfile import read_csv_rows
from photo2cad.shapes.pool import PoolError, PoolListing, scan_pool

OnMissing = Literal["error", "skip"]
_EXAMPLES_LOGGED = 5


class RecordProblems:
    """Applies the readers' error policy to broken records.

    With ``on_missing="error"`` the first problem raises DatasetError naming the file and the record; with "skip" the
    record is dropped and counted, and :meth:`log` reports the count and the first few examples at WARNING.
    """

    def __init__(self, dataset: str, on_missing: OnMissing, logger: logging.Logger) -> None:
        if on_missing not in ("error", "skip"):
            raise ValueError(f"on_missing must be 'error' or 'skip', not {on_missing!r}")
        self.dataset = dataset
        self.on_missing = on_missing
        self.logger = logger
        self.count = 0
        self.examples: list[str] = []

    def report(self, source: Path, record: str, problem: str) -> None:
        message = f"{source}: {record}: {problem}"
        if self.on_missing == "error":
            raise DatasetError(message)
        self.count += 1
        if len(self.examples) < _EXAMPLES_LOGGED:
            self.examples.append(message)

    def file_missing(self, path: Path, source: Path, record: str, what: str) -> bool:
        """True when ``path`` is a file; otherwise reports the record and returns False."""
        if path.is_file():
            return True
        self.report(source, record, f"{what} not found: {path}")
        return False

    def log(self) -> None:
        if self.count:
            self.logger.warning(
                "%s: skipped %d broken record(s) (on_missing='skip'); first %d:\n  %s",
                self.dataset,
                self.count,
                len(self.examples),
                "\n  ".join(self.examples),
            )


def parse_split(value: str) -> Split | None:
    cleaned = value.strip()
    for split in SPLITS:
        if cleaned == split:
            return split
    return None


def is_text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def load_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise DatasetError(f"{what} not found: {path}")
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise DatasetError(
            f"{path}: malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path}: not UTF-8 text: {error}") from None


def read_csv(
    path: Path,
    required: Sequence[str],
    optional: Sequence[str],
    problems: RecordProblems,
    what: str,
) -> list[tuple[int, dict[str, str]]]:
    """Rows as ``(line number, {column: stripped value})``; optional columns that are absent read as ''.

    A missing file, a missing required column or text the csv module cannot parse raise DatasetError; a row with the
    wrong number of fields is a broken record (raised or skipped by ``problems``).
    """

    def bad_row(line: int, reason: str) -> None:
        problems.report(path, f"line {line}", reason)

    rows = read_csv_rows(path, required, DatasetError, what, bad_row)
    for _, values in rows:
        for name in optional:
            values.setdefault(name, "")
    return rows


def scan_pool_logged(root: Path, logger: logging.Logger, categories_csv: Path | None = None) -> PoolListing:
    """scan_pool, with its skipped entries logged at WARNING and its errors turned into DatasetError."""
    try:
        listing = scan_pool(root, categories_csv)
    except PoolError as error:
        raise DatasetError(str(error)) from None
    log_skipped(listing, logger)
    return listing


def log_skipped(listing: PoolListing, logger: logging.Logger) -> None:
    if listing.skipped:
        logger.warning(
            "pool: %d entr%s skipped:\n  %s",
            len(listing.skipped),
            "y" if len(listing.skipped) == 1 else "ies",
            "\n  ".join(f"{entry.path}: {entry.reason}" for entry in listing.skipped[:_EXAMPLES_LOGGED]),
        )


def split_by_photo(keys: Iterable[str], fractions: dict[Split, float], seed: int) -> dict[str, Split]:
    """Seeded shuffle of ``keys`` cut into the given fractions; splits not named get nothing, "train" takes the rest.

    Keys are sorted before shuffling, so the result depends only on the set of keys and the seed.
    """
    _check_fractions(fractions)
    ordered = sorted(set(keys))
    random.Random(seed).shuffle(ordered)
    assignment: dict[str, Split] = {}
    start = 0
    for split in ("test", "val"):
        count = round(len(ordered) * fractions.get(split, 0.0))
        for key in ordered[start : start + count]:
            assignment[key] = split
        start += count
    for key in ordered[start:]:
        assignment[key] = "train"
    return assignment


def split_within_groups(groups: dict[str, list[str]], val_fraction: float, seed: int) -> dict[str, Split]:
    """Train/val split of each group's members (a group = the photos of one shape).

    Each group of two or more members puts at least one in each split; a group of one stays in train. A group's
    shuffle is seeded by ``seed`` and the group's name, so adding a shape leaves the other shapes' split unchanged.
    """
    _check_fractions({"val": val_fraction})
    assignment: dict[str, Split] = {}
    for name in sorted(groups):
        members = sorted(set(groups[name]))
        random.Random(f"{seed}:{name}").shuffle(members)
        val_count = round(len(members) * val_fraction)
        if len(members) >= 2 and 0 < val_fraction < 1:
            val_count = min(max(val_count, 1), len(members) - 1)
        for index, member in enumerate(members):
            assignment[member] = "val" if index < val_count else "train"
    return assignment


def split_whole_groups(groups: dict[str, list[str]], val_fraction: float, seed: int, fold: int = 0) -> dict[str, Split]:
    """Train/val split by group: every member of a group lands in the same split (unseen shapes in val).

    `fold` k holds out the k-th block of `val_fraction` of the shuffled groups, so folds 0, 1, ... hold out disjoint
    groups (fold 0 is the plain split) and together measure on more groups than one split can."""
    _check_fractions({"val": val_fraction})
    names = sorted(groups)
    random.Random(seed).shuffle(names)
    size = round(len(names) * val_fraction)
    folds = len(names) // size if size else 1
    if not 0 <= fold < folds:
        raise DatasetError(
            f"fold must be within 0..{folds - 1} ({len(names)} groups, {size} held out per fold), not {fold}"
        )
    held_out = set(names[fold * size : (fold + 1) * size])
    return {member: "val" if name in held_out else "train" for name in names for member in groups[name]}


def _check_fractions(fractions: dict[Split, float]) -> None:
    for split, fraction in fractions.items():
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"{split} fraction must be within [0, 1], not {fraction}")
    if sum(fractions.values()) > 1.0:
        raise ValueError(f"split fractions add up to more than 1: {fractions}")
