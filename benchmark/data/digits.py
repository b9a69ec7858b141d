"""scikit-learn's bundled 8x8 handwritten digits (1797 images; no download needed)."""

from __future__ import annotations

import numpy as np
import torch

from .base import DataError, Dataset, DatasetSpec, LoadRequest
from .splits import fingerprint, split_indices

RESOLUTIONS = (8,)
NUM_CLASSES = 10
_MAX_VALUE = 16  # pixel values are integer counts 0..16 (4x4 blocks of a 32x32 bitmap)


def check_resolution(resolution: object) -> int:
    """8 for None or 8; DataError for any other resolution."""
    if resolution is None:
        return 8
    if isinstance(resolution, bool) or resolution not in RESOLUTIONS:
        raise DataError(f"dataset.resolution: {resolution!r} is not allowed for digits; allowed: 8")
    return 8


def load_digits(n_train: int | None, n_test: int, split_seed: int) -> Dataset:
    """Digits scaled to [0, 1] by /16, split by a fixed permutation drawn from split_seed."""
    # Imported here: scikit-learn takes seconds to import, and most runs only use dSprites.
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    # Keep the exact integer counts for hashing: they are the data, the floats are derived.
    counts = np.asarray(bunch.images).round().astype(np.uint8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    train_idx, test_idx = split_indices(len(counts), n_train, n_test, split_seed, "digits")
    params = {"resolution": 8, "n_train": n_train, "n_test": n_test, "split_seed": split_seed}
    fp = fingerprint(
        "digits",
        params,
        train_idx=train_idx,
        test_idx=test_idx,
        x_train=counts[train_idx],
        x_test=counts[test_idx],
    )

    def images(idx: np.ndarray) -> torch.Tensor:
        x = counts[idx][:, None].astype(np.float32) / np.float32(_MAX_VALUE)
        return torch.from_numpy(np.ascontiguousarray(x))

    return Dataset(
        name="digits",
        description=(f"scikit-learn digits, 8x8, {len(train_idx)} train / {len(test_idx)} test"),
        x_train=images(train_idx),
        x_test=images(test_idx),
        y_train=torch.from_numpy(labels[train_idx]),
        y_test=torch.from_numpy(labels[test_idx]),
        num_classes=NUM_CLASSES,
        factors_test=None,
        factor_names=(),
        factor_sizes=(),
        fingerprint=fp,
        sample_factors=None,
    )


def _load(spec: DatasetSpec, request: LoadRequest) -> Dataset:
    return load_digits(request.n_train, request.n_test, request.split_seed)


SPEC = DatasetSpec(
    name="digits",
    title="Digits (8x8)",
    description="scikit-learn's bundled 8x8 handwritten digits, pixel counts 0..16 / 16",
    resolutions=RESOLUTIONS,
    channels=1,
    labelled=True,
    num_classes=NUM_CLASSES,
    has_factors=False,
    train_size=1797,
    test_size=None,
    accepts_path=False,
    accepts_data_root=False,
    loader=_load,
    no_path_reason="bundled with scikit-learn",
    feature_net_split={"n_test": 300},  # the loader's default n_test (2000) exceeds its 1797
)
