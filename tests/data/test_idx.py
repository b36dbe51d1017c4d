"""IDX round trips and malformed headers (property tests)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from archlab.data.idx import IDX_TYPES, IDXFormatError, encode_idx, parse_idx, read_idx, write_idx

DTYPES = [np.dtype(t).newbyteorder("=") for t in IDX_TYPES.values()]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(DTYPES).flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
                          elements={"allow_nan": False} if dt.kind == "f" else None)))
def test_round_trip(array):
    back = parse_idx(encode_idx(array))
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=4, max_size=4).filter(lambda b: b[0] != 0 or b[1] != 0 or b[2] not in IDX_TYPES))
def test_bad_magic_is_refused(magic):
    with pytest.raises(IDXFormatError, match="magic number"):
        parse_idx(magic + b"\x00" * 16, "f.idx")


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6)),
       st.integers(min_value=1, max_value=50))
def test_truncated_or_padded_data_names_the_byte_counts(array, cut):
    data = encode_idx(array)
    header = 4 + 4 * array.ndim
    short = data[:max(header, len(data) - cut)] if len(data) - cut >= header else data[:header]
    if len(short) < len(data):
        with pytest.raises(IDXFormatError, match="truncated"):
            parse_idx(short, "f.idx")
    with pytest.raises(IDXFormatError, match="trailing bytes"):
        parse_idx(data + b"\x00" * cut, "f.idx")


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=6), st.integers(min_value=0, max_value=23))
def test_header_cut_short(ndim, keep):
    data = bytes([0, 0, 0x08, ndim]) + struct.pack(f">{ndim}I", *([2] * ndim))
    cut = data[:4 + min(keep, 4 * ndim - 1)]
    with pytest.raises(IDXFormatError, match="dimensions"):
        parse_idx(cut, "f.idx")


def test_gzip_round_trip_and_truncated_gzip(tmp_path):
    array = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    path = tmp_path / "a-idx3-ubyte.gz"
    write_idx(path, array)
    np.testing.assert_array_equal(read_idx(path), array)
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(IDXFormatError, match="a-idx3-ubyte.gz.*truncated or corrupt"):
        read_idx(path)


def test_zero_dimensions_refused():
    with pytest.raises(IDXFormatError, match="0 dimensions"):
        parse_idx(bytes([0, 0, 8, 0]))


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "none.gz")


def test_non_gzip_bytes_in_gz_file(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(IDXFormatError, match="x.gz"):
        read_idx(path)
