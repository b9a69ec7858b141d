"""A test plugin: a whole new dataset in one module, its loader and its spec, plus one
`register(...)` line. Nothing else in the code names it (tests/test_registries.py)."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.data import Dataset, DatasetSpec, LoadRequest, register
from benchmark.data.splits import fingerprint, split_indices

POOL = 96  # images: 8x8 binary stripes, horizontal (class 0) or vertical (class 1)


def load(spec: DatasetSpec, request: LoadRequest) -> Dataset:
    """The POOL images, split by `split_indices` like the other pooled datasets."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, POOL)
    rows = rng.integers(0, 2, (POOL, 8)).astype(np.float32)
    images = np.where(labels[:, None, None] == 0, rows[:, :, None], rows[:, None, :])
    images = np.broadcast_to(images, (POOL, 8, 8))[:, None].copy()
    r = request
    train_idx, test_idx = split_indices(POOL, r.n_train, r.n_test, r.split_seed, spec.name)
    params = {"n_train": r.n_train, "n_test": r.n_test, "split_seed": r.split_seed}
    fp = fingerprint(spec.name, params, train_idx=train_idx, test_idx=test_idx,
                     x_train=images[train_idx], x_test=images[test_idx])  # fmt: skip
    return Dataset(
        name=spec.name,
        description=f"tiny stripes, {len(train_idx)} train / {len(test_idx)} test",
        x_train=torch.from_numpy(images[train_idx]),
        x_test=torch.from_numpy(images[test_idx]),
        y_train=torch.from_numpy(labels[train_idx]),
        y_test=torch.from_numpy(labels[test_idx]),
        num_classes=2,
        factors_test=None,
        factor_names=(),
        factor_sizes=(),
        fingerprint=fp,
        sample_factors=None,
    )


SPEC = register(
    DatasetSpec(
        name="tiny_stripes",
        title="Tiny stripes",
        description="96 binary 8x8 images of horizontal or vertical stripes (2 classes)",
        resolutions=(8,),
        channels=1,
        labelled=True,
        num_classes=2,
        has_factors=False,
        train_size=POOL,
        test_size=None,
        accepts_path=False,
        accepts_data_root=False,
        loader=load,
        no_path_reason="generated in memory",
    )
)
