"""Deterministic train/test splits, argument checks shared by the loaders, and the fingerprint."""

from __future__ import annotations

import hashlib
import json
import numbers
from collections.abc import Mapping

import numpy as np

from .base import DataError

FINGERPRINT_CHARS = 16


def check_int(key: str, value: object, *, minimum: int, allow_none: bool = False) -> int | None:
    """Validate an integer argument; `key` is the config key users see (e.g. dataset.n_test)."""
    if value is None and allow_none:
        return None
    # bool is an int subclass, but `n_test: true` in a YAML sweep is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        allowed = f"an integer >= {minimum}" + (" or null" if allow_none else "")
        raise DataError(f"{key}: {value!r} is not allowed; allowed: {allowed}")
    return int(value)


def split_indices(
    total: int, n_train: int | None, n_test: int, split_seed: int, dataset: str
) -> tuple[np.ndarray, np.ndarray]:
    """Return (train, test) int64 indices into a dataset of `total` items.

    One permutation of all items is drawn from `default_rng(split_seed)`; the first n_test are
    the test split and the next n_train (or all the rest) the training split. Because the test
    split never depends on n_train, runs that vary the training-set size share one test set.
    """
    if n_train is None:
        if n_test >= total:
            raise DataError(
                f"dataset.n_test: {n_test} leaves no training images; {dataset} has {total} "
                f"images, so dataset.n_test must be < {total}"
            )
        n_train = total - n_test
    elif n_train + n_test > total:
        raise DataError(
            f"dataset.n_train + dataset.n_test: {n_train} + {n_test} = {n_train + n_test} exceeds "
            f"the {total} images of {dataset}; allowed: a sum <= {total}"
        )
    perm = np.random.default_rng(split_seed).permutation(total).astype(np.int64)
    return perm[n_test : n_test + n_train].copy(), perm[:n_test].copy()


def _canonical(array: np.ndarray) -> np.ndarray:
    """Fix dtype and byte order so the same data hashes the same on every platform."""
    array = np.asarray(array)
    if array.dtype.kind == "f" and np.isin(array, (0.0, 1.0)).all():
        array = array.astype(np.uint8)  # binary images hash the same whether stored as 0/1 or float
    if array.dtype.kind in "iu" and array.dtype != np.uint8:
        array = array.astype(np.int64)
    return np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<")))


def fingerprint(
    name: str,
    params: Mapping[str, object],
    *,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    x_train: np.ndarray,
    x_test: np.ndarray,
) -> str:
    """16 hex chars of sha256 over name, parameters, split indices and pixel data."""
    digest = hashlib.sha256()
    header = json.dumps({"name": name, "params": dict(params)}, sort_keys=True, default=str)
    digest.update(header.encode())
    for key, array in (
        ("train_idx", train_idx),
        ("test_idx", test_idx),
        ("x_train", x_train),
        ("x_test", x_test),
    ):
        array = _canonical(array)
        # Shape and dtype go in too, so e.g. a reshaped buffer cannot collide with the original.
        digest.update(f"|{key}:{array.dtype.str}:{array.shape}|".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()[:FINGERPRINT_CHARS]
