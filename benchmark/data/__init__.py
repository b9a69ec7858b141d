"""Datasets of the benchmark: `load_dataset(name, ...)` returns a `Dataset`; `SPECS[name]` says
what each allows (resolutions, channels, labels, factors, sizes) without loading anything.

"dsprites" is our dSprites-like renderer unless `path` points at the real dSprites npz;
"digits" is scikit-learn's bundled 8x8 digits. Both are pooled: test and train splits come from
one seeded permutation. "fashion_mnist", "mnist", "cifar10" and "celeba" keep their official
train/test sets and read their files from `data_root` (see `official`), downloading through
torchvision when they are missing.
"""

from __future__ import annotations

from pathlib import Path

from . import celeba, cifar10, digits, dsprites, mnist
from .base import SPECS, DataError, Dataset, DatasetSpec
from .splits import check_int

__all__ = ["DATASETS", "SPECS", "DataError", "Dataset", "DatasetSpec", "load_dataset"]

DATASETS: tuple[str, ...] = tuple(SPECS)


def _check_sources(name: str, path: str | None, data_root: str | Path | None) -> None:
    spec = SPECS[name]
    if path is not None and not spec.accepts_path:
        why = "bundled with scikit-learn" if name == "digits" else "use dataset.data_root"
        raise DataError(f"dataset.path: {path!r} is not allowed for {name} ({why}); allowed: null")
    if data_root is not None and not spec.accepts_data_root:
        allowed = [n for n, s in SPECS.items() if s.accepts_data_root]
        raise DataError(
            f"dataset.data_root: {str(data_root)!r} is not allowed for {name}; allowed: null "
            f"(only {', '.join(allowed)} read files from a data root)"
        )


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
    official train set, each chosen by a permutation from split_seed. `cache_dir` caches the
    dSprites-like renderer's output and is ignored otherwise. `data_root` (default:
    $VAEBENCH_DATA_ROOT, else ~/.cache/vaebench/datasets) is where the downloadable datasets
    live. resolution=None: the spec's default (the first of SPECS[name].resolutions).
    """
    if name not in SPECS:
        raise DataError(f"dataset.name: {name!r} is not allowed; allowed: {', '.join(DATASETS)}")
    n_train = check_int("dataset.n_train", n_train, minimum=1, allow_none=True)
    n_test = check_int("dataset.n_test", n_test, minimum=1)
    split_seed = check_int("dataset.split_seed", split_seed, minimum=0)
    _check_sources(name, path, data_root)
    spec = SPECS[name]
    resolution = spec.check_resolution(resolution)
    # Official splits are checked against their published sizes here, before any file is read
    # (the loaders check again against the files on disk); pooled ones check their own pool.
    problem = None if spec.pooled else spec.check_split(n_train, n_test)
    if problem is not None:
        raise DataError(problem)
    if name == "digits":
        return digits.load_digits(n_train, n_test, split_seed)
    if name == "dsprites":
        if path is None:
            return dsprites.load_dsprites_like(resolution, n_train, n_test, split_seed, cache_dir)
        return dsprites.load_dsprites_npz(path, resolution, n_train, n_test, split_seed)
    if name in ("fashion_mnist", "mnist"):
        return mnist.load_mnist_like(name, resolution, n_train, n_test, split_seed, data_root)
    if name == "cifar10":
        return cifar10.load_cifar10(n_train, n_test, split_seed, data_root)
    return celeba.load_celeba(n_train, n_test, split_seed, data_root)
