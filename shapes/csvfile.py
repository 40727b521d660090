"""Reading a CSV file with a header row: every problem names the file and the line."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path


def read_csv_rows(
    path: Path,
    required: Sequence[str],
    error: type[Exception],
    what: str,
    on_bad_row: Callable[[int, str], None],
) -> list[tuple[int, dict[str, str]]]:
    """Rows as ``(line number, {column: stripped value})``, blank lines left out.

    A missing file, a missing required column or text the csv module cannot parse raise `error`; a row with the wrong
    number of fields goes to `on_bad_row(line, reason)`, which raises or counts it, and is left out.
    """
    if not path.is_file():
        raise error(f"{what} not found: {path}")
    rows: list[tuple[int, dict[str, str]]] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise error(f"{path}: empty file, expected a header with {', '.join(required)}")
            columns = [name.strip() for name in header]
            missing = [name for name in required if name not in columns]
            if missing:
                raise error(f"{path}: line 1: header {header!r} lacks column(s) {', '.join(missing)}")
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(columns):
                    on_bad_row(line, f"expected {len(columns)} fields, got {len(row)}: {row!r}")
                    continue
                rows.append((line, {name: cell.strip() for name, cell in zip(columns, row, strict=True)}))
        except csv.Error as err:  # the reader has already counted the line it failed on
            raise error(f"{path}: near line {reader.line_num}: malformed CSV: {err}") from None
        except UnicodeDecodeError as err:
            raise error(f"{path}: line {reader.line_num + 1}: not UTF-8 text: {err}") from None
    return rows
