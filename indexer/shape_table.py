"""The shapes of one index version as columns: compact at a million rows, read in one go, never parsed row by row.

A manifest of a million `ShapeEntry` objects takes seconds to parse and about a gigabyte of memory; these columns
take a tenth of that and load in a fraction of a second. Each text column is one UTF-8 byte string plus row offsets;
categories are numbered. Rows are grouped by category (then sorted by shape_id), so that the rows of one category
are one contiguous range: a category-filtered search scans a slice of the vectors instead of gathering rows.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np
from pydantic import BaseModel, Field

from photo2cad.files import atomic_path

SHAPES_FILE = "shapes.npz"
_TEXT_COLUMNS = ("shape_id", "source_path", "checksum", "thumbnail")
_NO_CATEGORY = -1


class ShapeEntry(BaseModel):
    shape_id: str
    source_path: str = Field(description="mesh file, relative to the pool root")
    category: str | None
    checksum: str = Field(description="sha256 of the mesh file")
    thumbnail: str = Field(description="JPEG, relative to the version directory")


def _pack(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [text.encode() for text in texts]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), np.uint8), offsets


class _TextColumn(Sequence[str]):
    def __init__(self, blob: np.ndarray, offsets: np.ndarray) -> None:
        self._bytes = blob.tobytes()
        self._offsets = offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, row: int) -> str: ...
    @overload
    def __getitem__(self, row: slice) -> list[str]: ...
    def __getitem__(self, row: int | slice) -> str | list[str]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        start, end = self._offsets[row], self._offsets[row + 1]
        return self._bytes[start:end].decode()

    def rows_that_may_hold(self, needles: Sequence[bytes], first: bytes = b"") -> np.ndarray:
        """Sorted rows whose text may contain one of `needles` or start with the byte `first`: searched in the packed
        bytes at C speed, not row by row. A needle across two rows' boundary also names a row: callers check the
        rows named again, exactly."""
        found = set()
        for needle in needles:
            at = self._bytes.find(needle)
            while at != -1:
                found.add(at)
                at = self._bytes.find(needle, at + 1)
        rows = np.searchsorted(self._offsets, np.array(sorted(found), np.int64), side="right") - 1
        if first and self._bytes:
            starts = self._offsets[:-1]
            non_empty = starts < self._offsets[1:]
            first_bytes = np.frombuffer(self._bytes, np.uint8)[np.minimum(starts, len(self._bytes) - 1)]
            rows = np.concatenate([rows, np.flatnonzero(non_empty & (first_bytes == first[0]))])
        return np.unique(rows[(rows >= 0) & (rows < len(self))])


def table_order(entries: Sequence[ShapeEntry]) -> list[int]:
    """The row order of a table of `entries`: by category (shapes without one first), then by shape_id."""
    return sorted(range(len(entries)), key=lambda i: (entries[i].category or "", entries[i].shape_id))


class ShapeTable(Sequence[ShapeEntry]):
    """Row -> ShapeEntry, shape_id -> row and category -> rows, over columns; immutable."""

    def __init__(
        self,
        columns: dict[str, _TextColumn],
        category_names: list[str],
        category_codes: np.ndarray,
        order_by_id: np.ndarray,
    ) -> None:
        self._columns = columns
        self._category_names = category_names
        self._category_codes = category_codes
        self._order_by_id = order_by_id  # rows sorted by shape_id: shape_id lookups by bisection
        self.rows_by_category = _rows_by_category(category_names, category_codes)

    @classmethod
    def from_entries(cls, entries: Iterable[ShapeEntry]) -> ShapeTable:
        """A table of `entries` in the given row order (see `table_order` for the order a version is written in)."""
        entries = list(entries)
        names = sorted({e.category for e in entries if e.category is not None})
        code_of = {name: code for code, name in enumerate(names)}
        codes = np.array([_NO_CATEGORY if e.category is None else code_of[e.category] for e in entries], np.int32)
        columns = {name: _TextColumn(*_pack([getattr(e, name) for e in entries])) for name in _TEXT_COLUMNS}
        order = np.array(sorted(range(len(entries)), key=lambda i: entries[i].shape_id), np.int64)
        return cls(columns, names, codes, order)

    def save(self, directory: Path) -> None:
        arrays: dict[str, Any] = {
            "category_names": np.array(self._category_names, dtype=np.str_),
            "category_codes": self._category_codes,
            "order_by_id": self._order_by_id,
        }
        for name, column in self._columns.items():
            arrays[f"{name}_bytes"] = np.frombuffer(column._bytes, np.uint8)
            arrays[f"{name}_offsets"] = column._offsets
        with atomic_path(directory / SHAPES_FILE) as partial:
            np.savez(partial, **arrays)

    @classmethod
    def load(cls, directory: Path) -> ShapeTable:
        with np.load(directory / SHAPES_FILE, allow_pickle=False) as data:
            columns = {n: _TextColumn(data[f"{n}_bytes"], data[f"{n}_offsets"]) for n in _TEXT_COLUMNS}
            names = [str(name) for name in data["category_names"].tolist()]
            return cls(columns, names, data["category_codes"], data["order_by_id"])

    def __len__(self) -> int:
        return len(self._category_codes)

    @overload
    def __getitem__(self, row: int) -> ShapeEntry: ...
    @overload
    def __getitem__(self, row: slice) -> list[ShapeEntry]: ...
    def __getitem__(self, row: int | slice) -> ShapeEntry | list[ShapeEntry]:
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(f"row {row} of a table of {len(self)} shapes")
        code = int(self._category_codes[row])
        return ShapeEntry(
            shape_id=self._columns["shape_id"][row],
            source_path=self._columns["source_path"][row],
            category=None if code == _NO_CATEGORY else self._category_names[code],
            checksum=self._columns["checksum"][row],
            thumbnail=self._columns["thumbnail"][row],
        )

    def __iter__(self) -> Iterator[ShapeEntry]:
        return (self[row] for row in range(len(self)))

    def column(self, name: str) -> _TextColumn:
        """One text column (shape_id, source_path, checksum, thumbnail) by row."""
        return self._columns[name]

    def row_of(self, shape_id: str) -> int | None:
        ids = self._columns["shape_id"]
        position = bisect.bisect_left(_KeyView(ids, self._order_by_id), shape_id)
        if position < len(self) and ids[int(self._order_by_id[position])] == shape_id:
            return int(self._order_by_id[position])
        return None

    def category_counts(self) -> dict[str, int]:
        counts = {name: len(rows) for name, rows in self.rows_by_category.items()}
        missing = int((self._category_codes == _NO_CATEGORY).sum())
        return {"-": missing, **counts} if missing else counts

    def shape_ids(self) -> list[str]:
        return list(self._columns["shape_id"])

    def checksums(self) -> list[str]:
        return list(self._columns["checksum"])


class _KeyView(Sequence[str]):
    """shape_ids in sorted order, read on demand: what bisect compares against."""

    def __init__(self, ids: _TextColumn, order: np.ndarray) -> None:
        self._ids, self._order = ids, order

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, position: int) -> str:  # type: ignore[override]
        return self._ids[int(self._order[position])]


def _rows_by_category(names: list[str], codes: np.ndarray) -> dict[str, np.ndarray]:
    """category -> its rows (int64, ascending); contiguous ranges when the table is in `table_order`."""
    if not len(codes):
        return {}
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    bounds = np.searchsorted(sorted_codes, np.arange(len(names) + 1))
    return {name: order[bounds[code] : bounds[code + 1]].astype(np.int64) for code, name in enumerate(names)}
