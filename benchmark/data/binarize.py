"""Binarisation of grey images in [0, 1]: each pixel becomes 1 with probability its grey value.

`dataset.binarize`:

- `none`: the grey images as loaded.
- `static`: one Bernoulli draw of the train and the test split at load, from a generator
  seeded by `dataset.split_seed` (so every trial seed sees the same binary images, like the
  fixed binarised MNIST of Larochelle & Murray 2011).
- `dynamic`: the training split stays grey and every training batch is drawn afresh
  (`binarize_batch`, the standard for MNIST likelihood benchmarks, e.g. Burda et al. 2016);
  the test split is drawn once as for `static`, so evaluation is repeatable.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Literal

import torch

from benchmark.data.base import Dataset

Mode = Literal["none", "static", "dynamic"]
# Offsets the split seed so the draw of the test split differs from that of the train split.
_TEST_STREAM = 1


def _draw(x: torch.Tensor, seed: int) -> torch.Tensor:
    return torch.bernoulli(x, generator=torch.Generator().manual_seed(seed))


def binarize_dataset(data: Dataset, mode: Mode, seed: int) -> Dataset:
    """The dataset with its splits binarised as `mode` says (see the module doc); `description`
    names the binarisation and `fingerprint` changes with it. ValueError on an unknown mode."""
    if mode == "none":
        return data
    if mode not in ("static", "dynamic"):
        raise ValueError(
            f"dataset.binarize: {mode!r} is not allowed; allowed: none, static, dynamic"
        )
    x_train = _draw(data.x_train, seed) if mode == "static" else data.x_train
    x_test = _draw(data.x_test, seed + _TEST_STREAM)
    how = (
        f"statically binarised (one Bernoulli draw, seed {seed})"
        if mode == "static"
        else f"dynamically binarised (a fresh Bernoulli draw per training batch; test drawn once, "
        f"seed {seed})"
    )
    fp = hashlib.sha256(f"{data.fingerprint}:{mode}:{seed}".encode()).hexdigest()[:16]
    return dataclasses.replace(
        data, description=f"{data.description}; {how}", x_train=x_train, x_test=x_test,
        fingerprint=fp,
    )  # fmt: skip


def binarize_batch(x: torch.Tensor) -> torch.Tensor:
    """A fresh Bernoulli draw of a training batch (dynamic binarisation). It uses the global
    torch generator, whose state training checkpoints already save, so a resumed run draws the
    same batches as an uninterrupted one."""
    return torch.bernoulli(x)
