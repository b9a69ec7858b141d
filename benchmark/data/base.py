"""The in-memory `Dataset` every variant and metric consumes. What each dataset allows, known
without loading it, is its `DatasetSpec` (`benchmark.data.spec`), re-exported here with
`DataError` and `split_problem` for the loaders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .spec import DataError, DatasetSpec, LoadRequest, split_problem

__all__ = ["DataError", "Dataset", "DatasetSpec", "FactorSampler", "LoadRequest", "split_problem"]

# Draws n points (every factor class independently uniform) and returns their images and classes.
FactorSampler = Callable[[int, np.random.Generator], tuple[torch.Tensor, np.ndarray]]


# eq=False: the generated __eq__/__hash__ would compare tensors and arrays element-wise, which
# raises ("truth value of a tensor is ambiguous") instead of answering; identity is what callers
# want, and the fingerprint is the content identity.
@dataclass(frozen=True, eq=False)
class Dataset:
    """One loaded dataset: both splits in memory, with what the metrics need.

    x_train / x_test: float32 images in [0, 1], (N, C, H, W); y_*: int64 class labels (N,) or
    None; factors_test: int ground-truth factor classes (N_test, F) or None, with their names
    and sizes; sample_factors: a `FactorSampler` drawing fresh images for chosen factors, or
    None; fingerprint: a content hash of the split (the data identity recorded with a run).
    """

    name: str
    description: str
    x_train: torch.Tensor
    x_test: torch.Tensor
    y_train: torch.Tensor | None
    y_test: torch.Tensor | None
    num_classes: int | None
    factors_test: np.ndarray | None
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    fingerprint: str
    sample_factors: FactorSampler | None
    # Which factor is the class label (dSprites: the shape), so that label-conditioned variants
    # can encode images drawn by `sample_factors`; None when labels are not a factor.
    label_factor: int | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images."""
        c, h, w = self.x_train.shape[1:]
        return (int(c), int(h), int(w))

    def __repr__(self) -> str:
        # The default repr would print whole tensors; one line is what logs and tables need.
        return f"Dataset({self.name!r}, {self.description!r}, fingerprint={self.fingerprint})"
