"""Reader of the idx format (MNIST, Fashion-MNIST): a 4-byte magic number (0, 0, type, ndim),
ndim big-endian uint32 sizes, then the data, row-major. Plain or gzipped (by the .gz suffix)."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from .base import DataError

_UBYTE = 0x08  # the only element type MNIST-style files use


def _corrupt(path: Path, why: str) -> DataError:
    return DataError(
        f"dataset.data_root: corrupt idx file {path} ({why}); replace it with the original"
    )


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """The uint8 array stored in an idx file; a DataError naming the file if it is not one."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                data = fh.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise _corrupt(path, f"unreadable: {err}") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise _corrupt(path, "no idx magic number")
    if data[2] != _UBYTE or data[3] != ndim:
        raise _corrupt(
            path, f"magic {data[:4].hex()}, expected 000008{ndim:02x} (unsigned bytes, {ndim}-d)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise _corrupt(path, "truncated header")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if len(data) - header != math.prod(shape):
        raise _corrupt(
            path, f"{len(data) - header} data bytes for shape {shape}, expected {math.prod(shape)}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
