"""What the datasets with an official train/test split share (Fashion-MNIST, MNIST, CIFAR-10,
CelebA): the data root, the one function that downloads, the seeded split, and the `Dataset`
built from their uint8 pixels.

Conventions: images are float32 in [0, 1] of shape (N, C, H, W) (uint8 / 255); labels int64.
The test split is `n_test` images of the official test set and the train split `n_train` images
(None: all) of the official train set, each in the order of its own permutation drawn from
`split_seed`, so the test split never depends on n_train and vice versa.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import torch

from .base import DataError, Dataset, DatasetSpec, split_problem
from .splits import fingerprint

DATA_ROOT_ENV = "VAEBENCH_DATA_ROOT"
DEFAULT_DATA_ROOT = "~/.cache/vaebench/datasets"
# False inside trials: the driver read every dataset before the trials started, so a trial
# that finds no files has a wrong path, which a download would only hide.
DOWNLOADS_ALLOWED = True
# Seconds a download may stall before it fails; without it an offline socket can hang for minutes.
DOWNLOAD_TIMEOUT_S = 30


def resolve_data_root(data_root: str | Path | None) -> Path:
    """data_root, else $VAEBENCH_DATA_ROOT, else ~/.cache/vaebench/datasets (user expanded)."""
    if data_root is None:
        data_root = os.environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT
    return Path(data_root).expanduser()


def torchvision_download(class_name: str, root: Path, **kwargs: object) -> None:
    """torchvision.datasets.<class_name>(root, download=True): this package's only network use."""
    # Imported here: torchvision is slow to import and only a download needs it.
    import torchvision.datasets

    getattr(torchvision.datasets, class_name)(root=str(root), download=True, **kwargs)


def download(title: str, class_name: str, root: Path, help_text: str, **kwargs: object) -> None:
    """Download through torchvision with a socket timeout; any failure is one DataError line.

    help_text says where to put which files by hand; it ends the message.
    """
    if not DOWNLOADS_ALLOWED:
        raise DataError(
            f"dataset.data_root: {title} files not found in {root}, and a trial never downloads "
            f"(the driver found the data before the trials started); {help_text}"
        )
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        torchvision_download(class_name, root, **kwargs)
    # Broad on purpose: torchvision fails with URLError, HTTPError, RuntimeError ("Error
    # downloading"), timeouts, bad archives...; all mean the same to the user: no files.
    except Exception as err:
        raise DataError(
            f"dataset.data_root: {title} files not found and the download into {root} failed "
            f"({short_reason(err)}); {help_text}"
        ) from err
    finally:
        socket.setdefaulttimeout(previous)


def short_reason(err: BaseException) -> str:
    """An exception in one line of at most 200 characters: its first and last lines.

    torchvision's "Error downloading x:" puts the actual cause (e.g. the URLError) last.
    """
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = type(err).__name__
    if lines:
        text += f": {lines[0]}"
    if len(lines) > 1:
        text = f"{text.rstrip(':')} ... {lines[-1]}"
    return text if len(text) <= 200 else text[:197] + "..."


def split(
    spec: DatasetSpec,
    totals: tuple[int, int],
    n_train: int | None,
    n_test: int,
    split_seed: int,
    source: str,
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) int64 indices into the train set and the test set found on disk.

    totals = the (train, test) image counts of the files, which a fixture may make smaller
    than the official sizes; the split is validated against those counts.
    """
    where = "" if totals == (spec.train_size, spec.test_size) else f" found in {source}"
    problem = split_problem(spec.name, n_train, n_test, totals[0], totals[1], where)
    if problem is not None:
        raise DataError(problem)
    # Two independent streams keyed by the seed: the test split ignores n_train and vice versa.
    test_idx = np.random.default_rng((split_seed, 0)).permutation(totals[1])[:n_test]
    train_idx = np.random.default_rng((split_seed, 1)).permutation(totals[0])[:n_train]
    return train_idx.astype(np.int64), test_idx.astype(np.int64)


def params(resolution: int, n_train: int | None, n_test: int, split_seed: int) -> dict[str, object]:
    """The arguments that enter the fingerprint (the files' path does not: pixels identify data)."""
    return dict(resolution=resolution, n_train=n_train, n_test=n_test, split_seed=split_seed)


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32).div_(255)


def _sizes_text(spec: DatasetSpec, totals: tuple[int, int]) -> str:
    official = f"{spec.train_size} train / {spec.test_size} test"
    if totals == (spec.train_size, spec.test_size):
        return f"of the official {official}"
    # Never hide that the files are not the full dataset: tables print this description.
    return f"of the {totals[0]} train / {totals[1]} test on disk (official: {official})"


def make_dataset(
    spec: DatasetSpec,
    *,
    source: str,
    preprocessing: str,
    params: dict[str, object],
    split: tuple[np.ndarray, np.ndarray],
    totals: tuple[int, int],
    images: tuple[np.ndarray, np.ndarray],
    labels: tuple[np.ndarray, np.ndarray] | None,
) -> Dataset:
    """The Dataset of uint8 (N, C, H, W) train/test images, hashed as uint8 with the indices."""
    (train_idx, test_idx), (x_train, x_test) = split, images
    fp = fingerprint(
        spec.name, params, train_idx=train_idx, test_idx=test_idx, x_train=x_train, x_test=x_test
    )
    description = (
        f"{spec.title} ({source}), {preprocessing}, {len(train_idx)} train / {len(test_idx)} "
        f"test {_sizes_text(spec, totals)}"
    )
    y_train, y_test = (None, None) if labels is None else labels
    return Dataset(
        name=spec.name,
        description=description,
        x_train=_to_tensor(x_train),
        x_test=_to_tensor(x_test),
        y_train=None if y_train is None else torch.from_numpy(y_train.astype(np.int64)),
        y_test=None if y_test is None else torch.from_numpy(y_test.astype(np.int64)),
        num_classes=spec.num_classes,
        factors_test=None,
        factor_names=(),
        factor_sizes=(),
        fingerprint=fp,
        sample_factors=None,
    )
