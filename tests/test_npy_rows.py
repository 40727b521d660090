"""Reading chosen rows of a .npy file without mapping it: what verification samples at start-up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from photo2cad.indexer.npy_rows import read_npy_rows


@pytest.mark.parametrize(("shape", "dtype"), [((50, 8), np.float32), ((40, 12, 6), np.float16), ((30,), np.int64)])
def test_rows_read_equal_the_loaded_arrays_rows(tmp_path: Path, shape: tuple[int, ...], dtype: type) -> None:
    array = (np.random.default_rng(0).random(shape) * 100).astype(dtype)
    path = tmp_path / "array.npy"
    np.save(path, array)
    rows = np.array([0, 7, 3, 3, shape[0] - 1])
    read = read_npy_rows(path, rows)
    assert read.dtype == array.dtype
    np.testing.assert_array_equal(read, array[rows])


def test_a_version_2_header_is_read_too(tmp_path: Path) -> None:
    # numpy writes a 2.0 header (4-byte length) when the header outgrows 1.0's; the rows follow it all the same.
    array = np.arange(24, dtype=np.float32).reshape(6, 4)
    path = tmp_path / "v2.npy"
    with path.open("wb") as file:
        np.lib.format.write_array(file, array, version=(2, 0))
    np.testing.assert_array_equal(read_npy_rows(path, np.array([5, 0])), array[[5, 0]])


def test_rows_outside_the_array_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "array.npy"
    np.save(path, np.zeros((5, 2), np.float32))
    with pytest.raises(IndexError, match="outside"):
        read_npy_rows(path, np.array([5]))
    with pytest.raises(IndexError, match="outside"):
        read_npy_rows(path, np.array([-1]))


def test_no_rows_give_an_empty_array_of_the_row_shape(tmp_path: Path) -> None:
    path = tmp_path / "array.npy"
    np.save(path, np.zeros((5, 2, 3), np.float16))
    assert read_npy_rows(path, np.zeros(0, np.int64)).shape == (0, 2, 3)
