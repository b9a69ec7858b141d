"""The in-memory dataset every variant and metric consumes, and the error type of this package."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

# Draws n points (every factor class independently uniform) and returns their images and classes.
FactorSampler = Callable[[int, np.random.Generator], tuple[torch.Tensor, np.ndarray]]


class DataError(Exception):
    """A bad dataset argument or file; the message names the config key and the allowed values."""


# eq=False: the generated __eq__/__hash__ would compare tensors and arrays element-wise, which
# raises ("truth value of a tensor is ambiguous") instead of answering; identity is what callers
# want, and the fingerprint is the content identity.
@dataclass(frozen=True, eq=False)
class Dataset:
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
        c, h, w = self.x_train.shape[1:]
        return (int(c), int(h), int(w))

    def __repr__(self) -> str:
        # The default repr would print whole tensors; one line is what logs and tables need.
        return f"Dataset({self.name!r}, {self.description!r}, fingerprint={self.fingerprint})"
