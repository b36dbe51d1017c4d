"""`read_inputs`: what a user's .npy, .csv or image file may hold before it reaches a model."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest

from archlab.data import DataSpec, read_inputs
from archlab.data.files import MAX_IMAGE_PIXELS, check_values
from archlab.errors import DataError

TABULAR = DataSpec(name="t", kind="tabular", input_shape=(3,), num_classes=2)
IMAGE = DataSpec(name="i", kind="image", input_shape=(1, 8, 8), num_classes=2)


def blank_png(path, width: int, height: int) -> None:
    """A valid 1-bit grayscale PNG of `width` x `height` zero pixels, compressed to a few kilobytes
    per 10^8 pixels: what a decompression bomb looks like."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the packed bits
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


@pytest.mark.parametrize("text, message", [
    ("1,2,3\n4,nan,6\n", "row 1, column 1 holds nan"),
    ("1,2,3\n4,5,inf\n", "row 1, column 2 holds inf"),
    ("1e40,2,3\n", r"row 0, column 0 holds 1e\+40, beyond float32's range"),
])
def test_non_finite_csv_values_are_refused_by_row_and_column(tmp_path, text, message):
    (tmp_path / "x.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        read_inputs(tmp_path / "x.csv", TABULAR)


@pytest.mark.parametrize("value, where", [(np.nan, "row 2, column 1"), (1e40, "row 2, column 1"),
                                          (-np.inf, "row 2, column 1")])
def test_non_finite_npy_values_are_refused_by_row_and_column(tmp_path, value, where):
    x = np.ones((4, 3))
    x[2, 1] = value
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(DataError, match=where):
        read_inputs(tmp_path / "x.npy", TABULAR)


def test_an_image_shaped_npy_names_the_position_in_the_example(tmp_path):
    x = np.zeros((2, 1, 8, 8), np.float32)
    x[1, 0, 3, 4] = np.nan
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(DataError, match=r"row 1, position \(0, 3, 4\) holds nan"):
        read_inputs(tmp_path / "x.npy", IMAGE)


def test_a_complex_npy_is_refused_not_cast(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((2, 3)) + 1j)
    with pytest.raises(DataError, match="complex numbers"):
        read_inputs(tmp_path / "x.npy", TABULAR)
    with pytest.raises(DataError, match="complex numbers"):
        check_values(np.ones((2, 3), np.complex64), "the inputs array")


def test_finite_values_in_range_pass(tmp_path):
    np.save(tmp_path / "x.npy", np.array([[3e38, -3e38, 0.0]]))
    np.testing.assert_array_equal(read_inputs(tmp_path / "x.npy", TABULAR), np.float32([[3e38, -3e38, 0.0]]))


class WritesMarker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_an_object_npy_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pwned"
    np.save(tmp_path / "x.npy", np.array([WritesMarker(marker)] * 3, dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="not a plain numeric .npy array"):
        read_inputs(tmp_path / "x.npy", TABULAR)
    assert not marker.exists()


def test_a_string_npy_is_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.array([["1", "2", "3"]]))
    with pytest.raises(DataError, match="must hold numbers; got an array of dtype <U1"):
        read_inputs(tmp_path / "x.npy", TABULAR)


def test_a_decompression_bomb_png_is_refused_from_its_header(tmp_path):
    path = tmp_path / "bomb.png"
    blank_png(path, 20000, 20000)
    assert path.stat().st_size < 2_000_000
    with pytest.raises(DataError, match="the image is 400000000 pixels, more than the 67108864"):
        read_inputs(path, IMAGE)


def test_an_image_above_the_limit_but_below_pils_is_refused_by_size(tmp_path):
    path = tmp_path / "big.png"
    blank_png(path, 9000, 8000)
    assert 9000 * 8000 > MAX_IMAGE_PIXELS
    with pytest.raises(DataError, match="the image is 9000 x 8000 pixels"):
        read_inputs(path, IMAGE)


def test_a_small_image_is_read(tmp_path):
    path = tmp_path / "small.png"
    blank_png(path, 30, 20)
    assert read_inputs(path, IMAGE).shape == (1, 1, 8, 8)
