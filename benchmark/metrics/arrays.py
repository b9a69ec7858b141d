"""Metric inputs as numpy arrays, whether they arrive as numpy or torch."""

from __future__ import annotations

import numpy as np


def to_numpy(x, name: str) -> np.ndarray:
    """`x` as an ndarray; torch tensors are detected without importing torch."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        t = x.detach().cpu()
        try:
            return t.numpy()
        except TypeError:  # e.g. bfloat16, which numpy lacks
            return t.float().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} could not be converted to a numpy array: {exc}") from exc
