"""A restricted unpickler for the Planetoid files, which are Python-2 pickles.

`pickle.load` runs whatever callable a file names, so an untrusted pickle can execute
code. This unpickler resolves only the handful of globals the Planetoid files use and
refuses every other one before anything is called:

- ``numpy.core.multiarray._reconstruct`` (only with ``numpy.ndarray``), ``numpy.ndarray``,
  ``numpy.dtype`` (no object dtypes): dense arrays (the one-hot labels, the sparse
  matrices' buffers);
- ``scipy.sparse.csr.csr_matrix``: read into `CSRState`, a plain record of the matrix's
  ``data``/``indices``/``indptr``/``shape`` — scipy's own code never runs;
- ``collections.defaultdict`` (only with ``list``) and ``list``: the adjacency dict;
- ``_codecs.encode`` (only to latin-1): how Python 3 stores bytes in a protocol-2 pickle,
  for files re-saved by Python 3.

Sizes are checked before anything is allocated: an array's bytes come from the file itself
(numpy checks their count against the declared shape), but a shape given to ``_reconstruct``
and a CSR matrix's ``shape`` are only declared. Each may claim at most `MAX_ARRAY_BYTES`, far
above the largest real Planetoid array (CiteSeer's dense features, 49 MB), so a file that
declares a terabyte array is refused by name instead of exhausting memory.
"""

from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

MAX_ARRAY_BYTES = 2**30


class ForbiddenContent(pickle.UnpicklingError):
    """The pickle names a global, or an argument, that a Planetoid file has no business with."""


class CSRState:
    """The pickled state of a ``scipy.sparse.csr_matrix``, kept as plain arrays."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise ForbiddenContent(f"csr_matrix state must be a dict; got {type(state).__name__}")
        self.data = np.asarray(state.get("data"))
        self.indices = np.asarray(state.get("indices"))
        self.indptr = np.asarray(state.get("indptr"))
        shape = state.get("_shape", state.get("shape"))
        if not (isinstance(shape, tuple) and len(shape) == 2 and all(isinstance(s, int) for s in shape)):
            raise ForbiddenContent(f"csr_matrix shape must be a pair of ints; got {shape!r}")
        self.shape = shape

    def to_dense(self) -> np.ndarray:
        """The dense ``(rows, cols)`` array, checked against the CSR invariants and `MAX_ARRAY_BYTES`."""
        rows, cols = self.shape
        _check_size("CSR matrix", self.shape, np.dtype(np.float32))
        if self.indptr.shape != (rows + 1,) or self.indices.shape != self.data.shape:
            raise DataError(f"malformed CSR matrix: indptr has {self.indptr.shape} entries for {rows} rows, "
                            f"{self.indices.shape} indices for {self.data.shape} values.")
        if self.indptr[0] != 0 or np.any(np.diff(self.indptr) < 0) or self.indptr[-1] != len(self.data):
            raise DataError("malformed CSR matrix: indptr must rise from 0 to the number of values.")
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= cols):
            raise DataError(f"malformed CSR matrix: column indices must lie in [0, {cols}).")
        dense = np.zeros(self.shape, dtype=np.float32)
        row_of = np.repeat(np.arange(rows), np.diff(self.indptr))
        np.add.at(dense, (row_of, self.indices), self.data.astype(np.float32))
        return dense


def _check_size(what: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    if any(s < 0 for s in shape):
        raise DataError(f"malformed {what}: its shape {shape} has a negative size.")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize  # Python ints: a huge shape must not overflow
    if nbytes > MAX_ARRAY_BYTES:
        raise DataError(f"a {what} of shape {shape} would need {nbytes / 2**30:.3g} GiB, more than the "
                        f"{MAX_ARRAY_BYTES / 2**30:g} GiB a Planetoid array may take; the file is not a "
                        "Planetoid file.")


def _reconstruct(cls, shape, dtype_code):
    if cls is not np.ndarray:
        raise ForbiddenContent(f"numpy _reconstruct is only allowed for numpy.ndarray; got {cls!r}")
    if not (isinstance(shape, tuple) and all(isinstance(s, int) for s in shape)):
        raise ForbiddenContent(f"numpy _reconstruct needs a tuple of ints as its shape; got {shape!r}")
    dtype = _dtype(dtype_code)
    _check_size("numpy array", shape, dtype)
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _dtype(*args):
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise ForbiddenContent(f"object arrays are not allowed in a Planetoid file; got dtype {dtype}")
    return dtype


def _latin1_bytes(text, encoding):
    # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(text, "latin1").
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise ForbiddenContent(f"_codecs.encode is only allowed to make latin-1 bytes; got {encoding!r}")
    return text.encode("latin1")


def _defaultdict(factory=None):
    if factory is not list:
        raise ForbiddenContent(f"defaultdict is only allowed with list; got {factory!r}")
    return collections.defaultdict(list)


ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("scipy.sparse.csr", "csr_matrix"): CSRState,
    ("scipy.sparse._csr", "csr_matrix"): CSRState,
    ("collections", "defaultdict"): _defaultdict,
    ("_codecs", "encode"): _latin1_bytes,
    ("builtins", "list"): list,
    ("__builtin__", "list"): list,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals in `ALLOWED` and refuses any other."""

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise ForbiddenContent(
                f"refusing to load global '{module}.{name}': a Planetoid file may only contain numpy arrays, "
                f"scipy CSR matrices and dicts of lists"
            ) from None


def safe_load(path: Path) -> Any:
    """Unpickle a Planetoid file (Python-2 pickles are read as latin-1), admitting only `ALLOWED`."""
    data = path.read_bytes()
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except ForbiddenContent as err:
        raise DataError(f"{path}: {err}.") from err
    except DataError as err:
        raise DataError(f"{path}: {err}") from err
    except MemoryError as err:  # a size the checks above let through, still too large for this machine
        raise DataError(f"{path}: not a readable Planetoid pickle: it declares more data than fits in memory "
                        f"({err}).") from err
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
        raise DataError(f"{path}: not a readable Planetoid pickle ({type(err).__name__}: {err}).") from err
