"""Datasets of the benchmark: `load_dataset(name, ...)` returns a `Dataset`.

"dsprites" is our dSprites-like renderer unless `path` points at the real dSprites npz;
"digits" is scikit-learn's bundled 8x8 digits.
"""

from __future__ import annotations

from pathlib import Path

from . import digits, dsprites
from .base import DataError, Dataset
from .splits import check_int

__all__ = ["DATASETS", "DataError", "Dataset", "load_dataset"]

DATASETS: tuple[str, ...] = ("dsprites", "digits")


def load_dataset(
    name: str,
    *,
    resolution: int | None = None,
    n_train: int | None = None,
    n_test: int = 2000,
    split_seed: int = 0,
    path: str | None = None,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """Load (render, or read from cache) a dataset with a deterministic train/test split.

    n_train=None means every image not in the test split. For "dsprites" only the sampled
    images are rendered/read; `cache_dir` caches the dSprites-like renderer's output and is
    ignored otherwise (digits load instantly, and the real file is its own cache).
    """
    if name not in DATASETS:
        raise DataError(f"dataset.name: {name!r} is not allowed; allowed: {', '.join(DATASETS)}")
    n_train = check_int("dataset.n_train", n_train, minimum=1, allow_none=True)
    n_test = check_int("dataset.n_test", n_test, minimum=1)
    split_seed = check_int("dataset.split_seed", split_seed, minimum=0)
    if name == "digits":
        if path is not None:
            raise DataError(
                f"dataset.path: {path!r} is not allowed for digits (bundled with scikit-learn); "
                "allowed: null"
            )
        digits.check_resolution(resolution)
        return digits.load_digits(n_train, n_test, split_seed)
    resolution = dsprites.check_resolution(64 if resolution is None else resolution)
    if path is None:
        return dsprites.load_dsprites_like(resolution, n_train, n_test, split_seed, cache_dir)
    return dsprites.load_dsprites_npz(path, resolution, n_train, n_test, split_seed)
