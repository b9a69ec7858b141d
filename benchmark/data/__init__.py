"""Datasets of the benchmark: `load_dataset(name, ...)` returns a `Dataset`; `SPECS[name]` says
what each allows (resolutions, channels, labels, factors, sizes, sources) without loading
anything, and holds its loader (`benchmark.data.registry`).

A dataset is one module `benchmark/data/<name>.py` holding its loader and its `SPEC`, plus one
`register(...)` line below (a plugin or a test registers its own spec the same way). The
built-ins: "dsprites" (our dSprites-like renderer unless `path` points at the real dSprites
npz) and "digits" (scikit-learn's bundled 8x8 digits) are pooled: test and train splits come
from one seeded permutation. "fashion_mnist", "mnist", "cifar10" and "celeba" keep their
official train/test sets and read their files from `data_root` (see `official`), downloading
through torchvision when they are missing.
"""

from __future__ import annotations

from pathlib import Path

from . import celeba, cifar10, digits, dsprites, mnist
from .base import Dataset
from .registry import SPECS, register
from .spec import DataError, DatasetSpec, LoadRequest
from .splits import check_int

__all__ = [
    "DATASETS",
    "SPECS",
    "DataError",
    "Dataset",
    "DatasetSpec",
    "LoadRequest",
    "load_dataset",
    "register",
]

# One line per built-in dataset; the order is the order of listings.
register(dsprites.SPEC)
register(digits.SPEC)
register(mnist.FASHION_MNIST)
register(mnist.MNIST)
register(cifar10.SPEC)
register(celeba.SPEC)

DATASETS: tuple[str, ...] = tuple(SPECS)  # the built-in names (SPECS also holds plugins')


def load_dataset(
    name: str,
    *,
    resolution: int | None = None,
    n_train: int | None = None,
    n_test: int = 2000,
    split_seed: int = 0,
    path: str | None = None,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> Dataset:
    """Load (render, read, or download and read) a dataset with a deterministic split.

    Pooled datasets (dsprites, digits): n_train=None means every image not in the test split.
    Official splits: n_test images of the official test set, n_train (None: all) of the
    official train set, each chosen by a permutation from split_seed. `cache_dir` caches
    rendered images (dsprites) and is ignored otherwise. `data_root` (default:
    $VAEBENCH_DATA_ROOT, else ~/.cache/vaebench/datasets) is where the downloadable datasets
    live. resolution=None: the spec's default (the first of SPECS[name].resolutions).

    Raises DataError, naming the `dataset.<key>` and what is allowed, on a bad argument, a
    split the data cannot hold, or missing or unreadable files.
    """
    if name not in SPECS:
        from benchmark.config.errors import did_you_mean

        raise DataError(
            f"dataset.name: {name!r} is not allowed; allowed: {', '.join(SPECS)}"
            + did_you_mean(name, list(SPECS))
        )
    n_train = check_int("dataset.n_train", n_train, minimum=1, allow_none=True)
    n_test = check_int("dataset.n_test", n_test, minimum=1)
    split_seed = check_int("dataset.split_seed", split_seed, minimum=0)
    spec = SPECS[name]
    problem = spec.check_sources(path, data_root)
    if problem is not None:
        raise DataError(problem)
    resolution = spec.check_resolution(resolution)
    # Official splits are checked against their published sizes here, before any file is read
    # (the loaders check again against the files on disk); pooled ones check their own pool.
    problem = None if spec.pooled else spec.check_split(n_train, n_test)
    if problem is not None:
        raise DataError(problem)
    request = LoadRequest(resolution, n_train, n_test, split_seed, path, data_root, cache_dir)
    return spec.load(request)
