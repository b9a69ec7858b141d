"""Active units (Burda et al., 2016, "Importance Weighted Autoencoders", ICLR).

A latent dimension ``u`` is *active* when the encoder's posterior mean moves with
the input: ``A_u = Cov_x(E_{q(z|x)}[z_u]) > threshold`` (0.01 in the paper).
``Cov_x`` is computed as the population variance (``ddof=0``) over the given data
points of each dimension's posterior mean, accumulated in float64. The
comparison is strict: a variance equal to the threshold is not active.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from benchmark.metrics.arrays import to_numpy
from benchmark.metrics.registry import Column, Metric, Needs

__all__ = ["active_units", "latent_variances"]


def latent_variances(means) -> np.ndarray:
    """Population variance (ddof=0, float64) over points of each latent mean, shape (d,)."""
    m = to_numpy(means, "means")
    if m.ndim != 2:
        raise ValueError(f"means must be 2-D (N, d), got ndim={m.ndim} with shape {m.shape}")
    if m.shape[0] < 2:
        raise ValueError(f"need at least 2 data points to estimate a variance, got N={m.shape[0]}")
    if m.shape[1] < 1:
        raise ValueError("means must have at least one latent dimension (d >= 1), got d=0")
    if m.dtype.kind not in "iuf":
        raise ValueError(f"means must be real-valued numbers, got dtype {m.dtype}")
    if not np.all(np.isfinite(m)):
        bad = np.unique(np.nonzero(~np.isfinite(m))[1]).tolist()
        raise ValueError(f"means contain NaN or inf values (latent dims {bad})")
    return np.var(m, axis=0, ddof=0, dtype=np.float64)


def active_units(means, threshold: float = 0.01) -> int:
    """Number of latent dimensions whose posterior-mean variance exceeds ``threshold``.

    Args:
        means: ``(N, d)`` posterior means ``E_q[z | x]`` (numpy array or torch
            tensor), one row per data point.
        threshold: activity threshold (strict ``>``); 0.01 as in Burda et al.

    Returns:
        The number of active units, an ``int`` in ``[0, d]``.
    """
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, numbers.Real)
        or not math.isfinite(threshold)
        or threshold < 0
    ):
        raise ValueError(f"threshold must be a finite non-negative number, got {threshold!r}")
    return int(np.count_nonzero(latent_variances(means) > threshold))


def _compute(ctx, params) -> tuple[dict[str, float], dict[str, str]]:
    return {"active_units": float(active_units(ctx.means))}, {}


def _check(params, eval_config, setting) -> tuple[str, str] | None:
    if setting.n_test < 2:
        return "dataset.n_test", (
            f"{setting.n_test} test image is too few for active_units (a variance); allowed: >= 2"
        )
    return None


METRIC = Metric(
    name="active_units",
    description="latent dims whose posterior mean varies over the test split (Cov > 0.01; "
    "Burda et al. 2016, arXiv:1509.00519)",
    # No better direction: more active units is not better in itself (a trade-off with KL).
    columns=(Column("active_units", "Active units", ".1f"),),
    compute=_compute,
    needs=Needs(continuous_latents=True),
    always=True,
    check=_check,
)
