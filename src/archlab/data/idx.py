"""Reader and writer for the IDX format of MNIST (LeCun et al.).

Header: two zero bytes, a type code, the number of dimensions, then each dimension
as a big-endian uint32; the data follow in C order, big-endian.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

# type code -> big-endian dtype
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IDXFormatError(DataError):
    """A file is not a valid IDX file."""


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise IDXFormatError(f"{path}: cannot decompress ({err}); the file is truncated or corrupt.") from err


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes, validating the magic number, dimensions and byte count."""
    if len(data) < 4:
        raise IDXFormatError(f"{source}: {len(data)} bytes is too short for an IDX header (4 bytes at least).")
    zero1, zero2, type_code, ndim = data[0], data[1], data[2], data[3]
    if zero1 != 0 or zero2 != 0 or type_code not in IDX_TYPES:
        raise IDXFormatError(
            f"{source}: bad IDX magic number 0x{data[:4].hex()}; expected 0x0000TTNN with type TT in "
            f"{{{', '.join(f'{t:02x}' for t in IDX_TYPES)}}}."
        )
    if ndim == 0:
        raise IDXFormatError(f"{source}: IDX header declares 0 dimensions.")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(f"{source}: header declares {ndim} dimensions but the file ends after {len(data)} bytes.")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(IDX_TYPES[type_code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got != expected:
        raise IDXFormatError(
            f"{source}: dimensions {dims} of {dtype.itemsize}-byte values need {expected} data bytes; "
            f"found {got} ({'truncated' if got < expected else 'trailing bytes'})."
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed)."""
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of `array` (types as in `IDX_TYPES`)."""
    array = np.asarray(array)
    for code, name in IDX_TYPES.items():
        if np.dtype(name).newbyteorder("=") == array.dtype:
            header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            return header + array.astype(name).tobytes()
    raise ValueError(f"IDX cannot store dtype {array.dtype}; it stores {sorted(set(IDX_TYPES.values()))}.")


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write `array` as IDX, gzip-compressed when `path` ends in ``.gz``."""
    path = Path(path)
    data = encode_idx(array)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
